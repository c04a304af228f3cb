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
    if (length > limitBytes) throw new AppError('payload_too_large', `body larger than ${limitBytes} bytes`);
    if (!ctx.is('application/json', 'application/*+json')) {
      throw new AppError('unsupported_media_type', 'send the body as application/json');
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of ctx.req) {
      size += (chunk as Buffer).length;
      if (size > limitBytes) throw new AppError('payload_too_large', `body larger than ${limitBytes} bytes`);
      chunks.push(chunk as Buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8');
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

declare module 'koa' {
  interface Request {
    body?: unknown;
  }
}
