/**
 * Recorded workflow histories: where they live, their file format, and the fixed public test key
 * they are encrypted with. Shared by the recorder (record.ts) and the replay test.
 *
 * File format: test/replay/histories/<workflowType>/<scenario>.json =
 *   { workflowType, scenario, description, recordedAt, workflowId, history }
 * where `history` is the History message in protobufjs object form
 * (`History.toObject(h, { longs: String, enums: String, bytes: String })`, bytes in base64), read
 * back with `History.fromObject`. (Temporal's own proto-JSON helpers in @temporalio/common break
 * with the two copies of protobufjs that npm installs here; the object form needs only
 * @temporalio/proto.) Every encrypted payload in it is encrypted with the fixture key below,
 * never with a key from a real Vault.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { AesGcmPayloadCodec, isEncrypted, payloadFromJson, payloadToJson } from '../../platform/temporal/payload-codec';
import { CodecKeySet, StaticCodecKeys } from '../../platform/temporal/codec-keys';

export const HISTORIES_DIR = join(__dirname, 'histories');
export const FIXTURE_KEY_FILE = join(HISTORIES_DIR, 'fixture-codec-key.json');

export interface RecordedHistory {
  workflowType: string;
  scenario: string;
  description: string;
  recordedAt: string;
  workflowId: string;
  history: Record<string, unknown>;
}

export type History = temporal.api.history.v1.IHistory;
const HistoryMsg = temporal.api.history.v1.History;

/** The public test key (kid `fixture-…`): services refuse it, see core/codec.ts. */
export function fixtureKeySet(): CodecKeySet {
  const raw = JSON.parse(readFileSync(FIXTURE_KEY_FILE, 'utf8')) as CodecKeySet & { _comment?: string };
  return { active_kid: raw.active_kid, keys: raw.keys };
}

export function fixtureCodec(): AesGcmPayloadCodec {
  return new AesGcmPayloadCodec(new StaticCodecKeys(fixtureKeySet()));
}

/** Every recorded history file, as paths relative to HISTORIES_DIR (`<type>/<scenario>.json`). */
export function historyFiles(): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(HISTORIES_DIR)) {
    const dir = join(HISTORIES_DIR, entry);
    if (!statSync(dir).isDirectory()) continue;
    for (const f of readdirSync(dir)) if (f.endsWith('.json')) out.push(relative(HISTORIES_DIR, join(dir, f)));
  }
  return out.sort();
}

export function loadRecorded(file: string): RecordedHistory {
  return JSON.parse(readFileSync(join(HISTORIES_DIR, file), 'utf8')) as RecordedHistory;
}

export function historyToObject(h: History): Record<string, unknown> {
  const msg = HistoryMsg.fromObject(h); // returns a message as it is
  return HistoryMsg.toObject(msg, { longs: String, enums: String, bytes: String });
}

export function historyFromObject(obj: Record<string, unknown>): History {
  return HistoryMsg.fromObject(obj);
}

/** A Payload in object form: metadata values and data in base64, an `encoding` entry present. */
function looksLikePayload(v: unknown): v is { metadata: Record<string, string>; data?: string } {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return false;
  const m = (v as { metadata?: unknown }).metadata;
  return !!m && typeof m === 'object' && typeof (m as Record<string, unknown>).encoding === 'string';
}

/** Calls `fn` on every payload in a history object (inputs, results, failures, headers, memo,
 * search attributes) and puts back what it returns. */
export async function mapPayloads(node: unknown, fn: (p: Payload) => Promise<Payload>): Promise<unknown> {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) node[i] = await mapPayloads(node[i], fn);
    return node;
  }
  if (looksLikePayload(node)) return payloadToJson(await fn(payloadFromJson(node)));
  if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) (node as Record<string, unknown>)[k] = await mapPayloads(v, fn);
  }
  return node;
}

/** Every payload in a history object, in object form (for the content checks). */
export function collectPayloads(node: unknown, out: Payload[] = []): Payload[] {
  if (Array.isArray(node)) node.forEach((n) => collectPayloads(n, out));
  else if (looksLikePayload(node)) out.push(payloadFromJson(node));
  else if (node && typeof node === 'object') Object.values(node).forEach((n) => collectPayloads(n, out));
  return out;
}

/** Re-encrypts every encrypted payload from one codec's key to another's; plain payloads (search
 * attributes) stay as they are. */
export function reencrypt(from: AesGcmPayloadCodec, to: AesGcmPayloadCodec) {
  return async (p: Payload): Promise<Payload> => {
    if (!isEncrypted(p)) return p;
    const [plain] = await from.decode([p]);
    const [enc] = await to.encode([plain]);
    return enc;
  };
}
