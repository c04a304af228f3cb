/** JSON body reader with a size cap; malformed input is a 4xx problem, never a 500. */
import type Koa from 'koa';
import { AppError } from '../../platform/errors';

export function jsonBody(limitBytes = 64 * 1024): Koa.Middleware {
  return async (ctx, next) => {
    if (!['POST', 'PUT', 'PATCH', 'DELETE'].includes(ctx.method)) {
      await next();
      return;
    }
    const length = Number(ctx.get('Content-Length') || 0);
    const chunked = /chunked/i.test(ctx.get('Transfer-Encoding'));
    if (!length && !chunked) {
      ctx.request.body = undefined;
      await next();
      return;
    }
    const text = await readText(ctx, limitBytes, ['application/json', 'application/*+json'], 'send the body as application/json');
    if (text.trim() === '') {
      ctx.request.body = undefined;
      await next();
      return;
    }
    try {
      ctx.request.body = JSON.parse(text) as unknown;
    } catch {
      throw new AppError('invalid_json', 'the body is not valid JSON');
    }
    await next();
  };
}

/**
 * The request body as text, at most `limitBytes` (checked on Content-Length and while reading):
 * 413 `payload_too_large` beyond, 415 `unsupported_media_type` for another media type. Shared by
 * the JSON reader above and the hosted pages' form reader (api/pages/html.ts).
 */
export async function readText(ctx: Koa.Context, limitBytes: number, types: string[], wrongType: string): Promise<string> {
  if (Number(ctx.get('Content-Length') || 0) > limitBytes) throw new AppError('payload_too_large', `body larger than ${limitBytes} bytes`);
  if (!ctx.is(...types)) throw new AppError('unsupported_media_type', wrongType);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > limitBytes) throw new AppError('payload_too_large', `body larger than ${limitBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

declare module 'koa' {
  interface Request {
    body?: unknown;
  }
}
