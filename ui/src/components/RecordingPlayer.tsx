// The call's audio, when the server kept it (HOTLINE_RECORD_AUDIO): one
// stereo WAV, the caller on the left and the agent on the right.

import { bytes, duration } from "../format";
import type { Recording } from "../types";
import { Card } from "./Layout";

export function RecordingPlayer(props: { recording: Recording | null }) {
  const r = props.recording;
  return (
    <Card title="Recording">
      {r ? (
        <div className="flex flex-wrap items-center gap-4 text-sm">
          {/* preload="none": nothing is downloaded until Play (a call's
              WAV is about 1 MB a minute, and most visits only read). */}
          <audio controls preload="none" src={r.url} className="min-w-72 flex-1" data-testid="recording" />
          <span className="text-slate-500">
            {[
              r.duration_ms !== null && duration(r.duration_ms),
              r.bytes !== null && bytes(r.bytes),
              "caller left, agent right",
            ]
              .filter(Boolean)
              .join(" · ")}
          </span>
          <a href={r.url} download className="text-sky-700 hover:underline">
            Download
          </a>
        </div>
      ) : (
        <p className="text-sm text-slate-500">Not recorded.</p>
      )}
    </Card>
  );
}
