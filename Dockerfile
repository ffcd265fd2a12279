# syntax=docker/dockerfile:1
# conflict-gate container image. Build: docker build -t conflict-gate:local .
# Run:   docker run --rm --network <your proxy's network> -p 127.0.0.1:9090:9090 \
#          -e JWKS_URL=... -e JWT_ISSUER=... -e JWT_AUDIENCE=... -e REDIS_URL=redis://host:6379/0 conflict-gate:local
# (8080 is not published: a caller arriving through Docker's gateway would count as a trusted proxy; docs/DEPLOY.md)
# Mount your own config over /etc/conflict-gate/gate.yaml (the baked-in one is deploy/gate.yaml).

ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: compile TypeScript with the dev dependencies ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: "prepare" would run the build before the sources are copied.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies and dist/ only ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY LICENSE ./
COPY deploy/gate.yaml /etc/conflict-gate/gate.yaml

# The image's "node" user (uid 1000). Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000

# 8080: /auth, /healthz, /readyz (PORT). 9090: /healthz, /readyz, /metrics, /versions (ADMIN_PORT).
# 9464: /metrics alone (server.metricsPort, which the baked-in deploy/gate.yaml sets).
EXPOSE 8080 9090 9464

# Liveness only (/healthz answers while the process runs); slim images have no curl, so node asks.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz',{signal:AbortSignal.timeout(2000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# node itself is PID 1 (npm and npx do not forward SIGTERM): SIGTERM drains in-flight requests,
# closes Redis and exits 0 within 10 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/dist/main.js"]
CMD ["--config", "/etc/conflict-gate/gate.yaml"]
