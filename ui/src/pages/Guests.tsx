import { useCallback, useEffect, useRef, useState } from "react";
import { get, request } from "../api";
import { Card, ErrorNote } from "../components/Layout";
import { short, when } from "../format";
import type { GuestStatus, GuestVersion } from "../types";

export function Guests() {
  const [status, setStatus] = useState<GuestStatus | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const file = useRef<HTMLInputElement>(null);

  const load = useCallback(() => {
    get<GuestStatus>("/admin/guest")
      .then(setStatus)
      .catch((e: Error) => setError(e.message));
  }, []);
  useEffect(load, [load]);

  const act = async (what: () => Promise<{ active: GuestVersion }>, verb: string) => {
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      const { active } = await what();
      setNotice(`${verb}: ${short(active.digest)} is active`);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
      load();
    }
  };

  const push = () => {
    const chosen = file.current?.files?.[0];
    if (!chosen) return;
    void act(() => request("PUT", "/admin/guest", chosen), "Pushed");
  };
  const rollback = () => void act(() => request("POST", "/admin/guest/rollback"), "Rolled back");

  const versions = status?.history ?? [];
  return (
    <div className="space-y-4">
      <h1 className="text-xl font-semibold">Guests</h1>
      <ErrorNote error={error} />
      {notice && (
        <p role="status" className="rounded-md bg-emerald-50 px-3 py-2 text-sm text-emerald-800" data-testid="notice">
          {notice}
        </p>
      )}
      <Card title="Push a component">
        <div className="flex flex-wrap items-center gap-3">
          <input ref={file} type="file" name="component" accept=".wasm,application/wasm" className="text-sm" />
          <button
            onClick={push}
            disabled={busy}
            className="rounded-md bg-slate-900 px-4 py-2 text-sm font-medium text-white disabled:opacity-50"
          >
            Push
          </button>
          <button
            onClick={rollback}
            disabled={busy || versions.length < 2}
            className="rounded-md border border-slate-300 px-4 py-2 text-sm disabled:opacity-50"
          >
            Roll back
          </button>
          <span className="text-xs text-slate-500">Swap policy: {status?.swap ?? "…"}</span>
        </div>
      </Card>
      <Card title="Versions, newest first">
        <table className="w-full text-left text-sm" data-testid="versions">
          <thead className="text-xs uppercase text-slate-500">
            <tr>
              <th className="py-2 pr-4 font-medium">Digest</th>
              <th className="py-2 pr-4 font-medium">Source</th>
              <th className="py-2 pr-4 font-medium">Loaded</th>
              <th className="py-2 pr-4 font-medium">Contract</th>
              <th className="py-2 pr-4 text-right font-medium">Calls</th>
              <th className="py-2 pr-4 text-right font-medium">Traps</th>
              <th className="py-2 pr-4 text-right font-medium">Migrations</th>
              <th className="py-2 text-right font-medium">Refusals</th>
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-100">
            {versions.map((v, i) => {
              const active = v.digest === status?.active?.digest;
              return (
                <tr key={`${v.digest}-${i}`} className={active ? "bg-emerald-50" : ""} data-testid={active ? "active-version" : "version"}>
                  <td className="py-2 pr-4 font-mono text-xs">
                    {short(v.digest)}
                    {active && <span className="ml-2 rounded bg-emerald-600 px-1.5 py-0.5 text-[10px] text-white">active</span>}
                  </td>
                  <td className="py-2 pr-4">{v.source}</td>
                  <td className="py-2 pr-4 whitespace-nowrap">{when(v.loaded_at * 1000)}</td>
                  <td className="py-2 pr-4 font-mono text-xs">{v.contract}</td>
                  <td className="py-2 pr-4 text-right">{v.calls}</td>
                  <td className="py-2 pr-4 text-right">{v.traps}</td>
                  <td className="py-2 pr-4 text-right">{v.migrations}</td>
                  <td className="py-2 text-right">{v.refusals}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </Card>
    </div>
  );
}
