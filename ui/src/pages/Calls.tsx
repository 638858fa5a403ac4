import { useEffect, useState, type FormEvent } from "react";
import { get } from "../api";
import { Card, ErrorNote } from "../components/Layout";
import { CallTable } from "../components/CallTable";
import { outcomeLabel } from "../format";
import { navigate, useLocation } from "../router";
import { OUTCOMES, type CallPage, type CallSummary } from "../types";

export function Calls() {
  const { search } = useLocation();
  const q = search.get("q") ?? "";
  const outcome = search.get("outcome") ?? "";
  const [text, setText] = useState(q);
  const [calls, setCalls] = useState<CallSummary[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const query = (more: string | null) => {
    const p = new URLSearchParams();
    if (q) p.set("q", q);
    if (outcome) p.set("outcome", outcome);
    if (more) p.set("cursor", more);
    return `/api/calls?${p.toString()}`;
  };

  useEffect(() => {
    setCalls(null);
    setError(null);
    get<CallPage>(query(null))
      .then((page) => {
        setCalls(page.calls);
        setCursor(page.next_cursor);
      })
      .catch((e: Error) => setError(e.message));
  }, [q, outcome]);

  const more = () => {
    if (!cursor) return;
    get<CallPage>(query(cursor))
      .then((page) => {
        setCalls((c) => [...(c ?? []), ...page.calls]);
        setCursor(page.next_cursor);
      })
      .catch((e: Error) => setError(e.message));
  };

  const apply = (nextQ: string, nextOutcome: string) => {
    const p = new URLSearchParams();
    if (nextQ) p.set("q", nextQ);
    if (nextOutcome) p.set("outcome", nextOutcome);
    const s = p.toString();
    navigate(s ? `/app/calls?${s}` : "/app/calls");
  };

  return (
    <div className="space-y-4">
      <h1 className="text-xl font-semibold">Calls</h1>
      <form
        className="flex flex-wrap gap-2"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          apply(text.trim(), outcome);
        }}
      >
        <input
          type="search"
          name="q"
          placeholder="Words in a transcript or a reply"
          value={text}
          onChange={(e) => setText(e.target.value)}
          className="min-w-64 flex-1 rounded-md border border-slate-300 bg-white px-3 py-2 text-sm focus:border-sky-500 focus:outline-none"
        />
        <select
          name="outcome"
          value={outcome}
          onChange={(e) => apply(text.trim(), e.target.value)}
          className="rounded-md border border-slate-300 bg-white px-3 py-2 text-sm"
        >
          <option value="">any outcome</option>
          {OUTCOMES.map((o) => (
            <option key={o} value={o}>
              {outcomeLabel[o]}
            </option>
          ))}
        </select>
        <button type="submit" className="rounded-md bg-slate-900 px-4 py-2 text-sm font-medium text-white">
          Search
        </button>
      </form>
      <ErrorNote error={error} />
      <Card title={q || outcome ? "Matching calls" : "All calls, newest first"}>
        {calls === null ? <p className="text-sm text-slate-500">Loading…</p> : <CallTable calls={calls} />}
        {cursor && (
          <button onClick={more} className="mt-3 rounded-md border border-slate-300 px-3 py-1.5 text-sm">
            More
          </button>
        )}
      </Card>
    </div>
  );
}
