import { useEffect, useState } from "react";
import { get } from "../api";
import { Card, ErrorNote, Link } from "../components/Layout";
import { OutcomeBadge } from "../components/CallTable";
import { RecordingPlayer } from "../components/RecordingPlayer";
import { Timeline } from "../components/Timeline";
import { duration, ms, short, when } from "../format";
import type { CallDetail as Detail } from "../types";

export function CallDetail(props: { sid: string }) {
  const [call, setCall] = useState<Detail | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    get<Detail>(`/api/calls/${encodeURIComponent(props.sid)}`)
      .then(setCall)
      .catch((e: Error) => setError(e.message));
  }, [props.sid]);

  return (
    <div className="space-y-4">
      <p className="text-sm">
        <Link to="/app/calls" className="text-sky-700 hover:underline">
          ← Calls
        </Link>
      </p>
      <h1 className="font-mono text-xl font-semibold">{props.sid}</h1>
      <ErrorNote error={error} />
      {call && (
        <>
          <Card title="Record" testId="record">
            <dl className="grid grid-cols-2 gap-x-6 gap-y-2 text-sm md:grid-cols-4">
              {(
                [
                  ["Started", when(call.started_at)],
                  ["Duration", duration(call.duration_ms)],
                  ["From → to", `${call.from ?? "–"} → ${call.to ?? "–"}`],
                  ["Direction", call.direction],
                  ["Stream", call.stream_sid],
                  ["Close code", call.close_code ?? "–"],
                  ["Guest", call.guests.map(short).join(" → ")],
                  ["Instance", call.instance ?? "–"],
                  ["Frames in / out", `${call.frames_in} / ${call.frames_out}`],
                ] as const
              ).map(([k, v]) => (
                <div key={k}>
                  <dt className="text-xs text-slate-500">{k}</dt>
                  <dd className="font-mono text-xs break-all">{v}</dd>
                </div>
              ))}
              <div>
                <dt className="text-xs text-slate-500">Outcome</dt>
                <dd>
                  <OutcomeBadge outcome={call.outcome} />
                </dd>
              </div>
            </dl>
          </Card>
          <RecordingPlayer recording={call.recording} />
          <div className="grid gap-4 lg:grid-cols-5">
            <Card title="Timeline" className="lg:col-span-3">
              <Timeline call={call} />
              {call.timeline_dropped > 0 && (
                <p className="mt-2 text-xs text-amber-700">{call.timeline_dropped} events not kept</p>
              )}
            </Card>
            <Card title="Transcript" className="lg:col-span-2" testId="transcript">
              {call.turns.length === 0 && <p className="text-sm text-slate-500">No turns.</p>}
              <ol className="space-y-3">
                {call.turns.map((t) => (
                  <li key={t.turn} className="space-y-1 text-sm" data-testid="turn">
                    <p className="text-xs text-slate-400">
                      turn {t.turn}
                      {t.eou_at_ms !== null && ` · ${(t.eou_at_ms / 1000).toFixed(1)} s`}
                      {t.first_audio_ms !== null && ` · first audio ${ms(t.first_audio_ms)}`}
                      {t.fallback && ` · fallback ${t.fallback}`}
                    </p>
                    <p className="rounded-lg bg-emerald-50 px-3 py-2">
                      <span className="text-xs font-medium text-emerald-800">Caller </span>
                      {t.transcript ?? <em className="text-slate-400">(no transcript)</em>}
                    </p>
                    {(t.reply ?? t.heard) && (
                      <p className="ml-6 rounded-lg bg-sky-50 px-3 py-2">
                        <span className="text-xs font-medium text-sky-800">Agent </span>
                        {t.barged_in ? (
                          <>
                            {t.heard}
                            <s className="text-slate-400"> {t.unheard}</s>
                          </>
                        ) : (
                          t.reply
                        )}
                      </p>
                    )}
                    {t.errors && <p className="text-xs text-red-700">{t.errors}</p>}
                  </li>
                ))}
              </ol>
            </Card>
          </div>
        </>
      )}
    </div>
  );
}
