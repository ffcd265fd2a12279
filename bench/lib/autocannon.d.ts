// The slice of autocannon's API the bench uses (the package ships no types).
declare module 'autocannon' {
  export interface AcRequest {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string;
    /** Called before each send of this request (a fresh Idempotency-Key per POST). */
    setupRequest?: (req: AcRequest) => AcRequest;
  }
  export interface AcClient {
    setRequests(requests: AcRequest[]): void;
  }
  export interface AcOptions {
    url: string;
    connections?: number;
    duration?: number;
    pipelining?: number;
    timeout?: number;
    requests?: AcRequest[];
    setupClient?: (client: AcClient) => void;
    excludeErrorStats?: boolean;
    /** Requests per second from all connections together (open loop when connections leave slack). */
    overallRate?: number;
  }
  export interface AcResult {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number; p99_9?: number };
    errors: number;
    timeouts: number;
    non2xx: number;
    duration: number;
    statusCodeStats: Record<string, { count: number }>;
    '2xx': number;
  }
  export interface AcInstance {
    on(event: 'response', fn: (client: AcClient, statusCode: number, resBytes: number, responseTime: number) => void): void;
    on(event: 'done', fn: (result: AcResult) => void): void;
    stop(): void;
  }
  function autocannon(opts: AcOptions, cb?: (err: Error | null, result: AcResult) => void): AcInstance;
  export default autocannon;
}
