// Every request the dashboard makes. The session cookie travels by itself
// (same origin); state-changing requests add X-Hotline-CSRF, which the
// server requires of cookie-authenticated POST/PUT/DELETE (another site's
// page cannot send a custom header). A 401 means the session is gone.

import { navigate } from "./router";

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

async function message(response: Response): Promise<string> {
  const text = await response.text();
  try {
    const body = JSON.parse(text) as { error?: string | { step: string; reason: string } };
    if (typeof body.error === "string") return body.error;
    if (body.error) return `${body.error.step}: ${body.error.reason}`;
  } catch {
    // Not JSON: the text is the message.
  }
  return text || response.statusText;
}

export async function request<T>(method: string, path: string, body?: BodyInit, json = false): Promise<T> {
  const headers: Record<string, string> = {};
  if (method !== "GET") headers["X-Hotline-CSRF"] = "1";
  if (json) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, body, headers, credentials: "same-origin" });
  if (response.status === 401 && path !== "/api/auth/login") {
    navigate("/app/login");
    throw new ApiError(401, "signed out");
  }
  if (!response.ok) throw new ApiError(response.status, await message(response));
  return (await response.json()) as T;
}

export const get = <T>(path: string) => request<T>("GET", path);
