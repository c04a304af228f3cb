# One image for the API and the worker (the command picks which). Node 20, compiled TypeScript.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client-15 ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
# Two malloc arenas: argon2id's per-hash memory (19 MiB on a libuv thread) is otherwise kept by
# every thread's arena (about 90 MB more resident memory per API process after a burst of logins).
ENV MALLOC_ARENA_MAX=2
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
# dist/ holds the compiled code and the workflow bundle (npm run build), which the worker loads
# instead of bundling workflow sources at start.
COPY --from=build /app/dist ./dist
USER node
CMD ["node", "dist/api/main.js"]
