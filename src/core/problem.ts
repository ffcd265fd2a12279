// Problem details (RFC 9457): the only place response bodies of denials and errors are built.
import { DENY, type Deny } from './decision.js';

export const PROBLEM_TYPE_BASE = 'https://conflict-gate.dev/problems/';

export interface ProblemResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface Problem {
  status: number;
  code: string;
  title: string;
  detail: string;
  members?: Record<string, string | number>;
  headers?: Record<string, string>;
}

/** `type`, `title`, `status`, `detail`, `code`, then any extra members. */
export function problemResponse(p: Problem): ProblemResponse {
  return {
    status: p.status,
    headers: { 'Content-Type': 'application/problem+json', 'Cache-Control': 'no-store', ...p.headers },
    body: JSON.stringify({ type: PROBLEM_TYPE_BASE + p.code, title: p.title, status: p.status, detail: p.detail, code: p.code, ...p.members }),
  };
}

export function renderProblem(d: Deny): ProblemResponse {
  return problemResponse({
    status: d.status ?? DENY[d.code].status,
    code: d.code,
    title: DENY[d.code].title,
    detail: d.detail,
    members: d.members,
    headers: d.headers,
  });
}
