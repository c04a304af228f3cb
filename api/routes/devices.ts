/** The signed-in user's known devices (domain/sessions/devices.ts): list them, forget one (ends its sessions). */
import Router from '@koa/router';
import { z } from 'zod';
import type { AppDeps } from '../context';
import { requestMeta, requireAuth } from '../middleware/auth';
import { describe } from '../openapi';

const DeviceSchema = z.object({
  id: z.string().uuid(),
  label: z.string().nullable().describe('"Firefox 128 on Linux", "curl", "Unknown device"'),
  trusted: z
    .boolean()
    .describe('false once the device has not been seen for the trust period (DEVICE_TRUST_TTL, 90 days by default): its next refresh needs a step-up'),
  current: z.boolean().describe('the device of the session making this request'),
  first_seen_at: z.string(),
  last_seen_at: z.string(),
  last_ip: z.string().nullable(),
});
const DevicesEnvelope = z.object({ devices: z.array(DeviceSchema) });

export function devicesRouter(deps: AppDeps): Router {
  const r = new Router({ prefix: '/v1/me/devices' });
  r.use(requireAuth(deps.tokens));

  describe('get', '/v1/me/devices', {
    summary: 'Known devices of the signed-in user (fingerprints from sign-ins and step-up verifications)',
    tags: ['me'],
    auth: true,
    responses: { 200: { description: 'the devices, most recently seen first', schema: DevicesEnvelope } },
  });
  r.get('/', async (ctx) => {
    const auth = ctx.state.auth!;
    ctx.body = { devices: await deps.devices.list(auth.sub, auth.sid) };
  });

  describe('delete', '/v1/me/devices/:id', {
    summary: 'Forget a device: sessions last used from it end now, and it is unknown (step-up) from then on',
    tags: ['me'],
    auth: true,
    responses: { 204: { description: 'forgotten' }, 404: { description: 'no such device of this user' } },
  });
  r.delete('/:id', async (ctx) => {
    await deps.devices.forget(ctx.state.auth!.sub, ctx.params.id ?? '', requestMeta(ctx));
    ctx.status = 204;
  });

  return r;
}
