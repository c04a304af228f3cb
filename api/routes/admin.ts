/**
 * Administration (bearer with role `admin`, checked against the live session and the database on
 * every request, so a demoted, suspended or signed-out admin loses access at once): user search
 * and detail, lock/unlock/suspend/reactivate, account reset, deletion, and the audit trail.
 * Mutations on the admin's own account need `confirm_self=true`.
 */
import Router from '@koa/router';
import type Koa from 'koa';
import { z } from 'zod';
import { EVENT_CURSOR, USER_CURSOR } from '../../domain/accounts/admin';
import { ROLE_NAME } from '../../domain/accounts/roles';
import { publicUser, USER_STATUSES } from '../../domain/accounts/users';
import { AppError } from '../../platform/errors';
import type { NotificationTemplate } from '../../domain/mail-templates';
import type { AppDeps } from '../context';
import { requestMeta, requireAuth, requireLiveAdmin, requireRole } from '../middleware/auth';
import { parse } from '../middleware/validate';
import { describe } from '../openapi';
import { DeletionSchema, Email, storedText, UserName, UserSchema } from '../schemas';

const Id = z.object({ id: z.string().uuid() });
const UserCursor = z.string().regex(USER_CURSOR, 'a next_cursor of this listing').describe('the next_cursor of the previous page');
const EventCursor = z.string().regex(EVENT_CURSOR, 'a next_cursor of this listing').describe('the next_cursor of the previous page');
const Limit = z.coerce.number().int().min(1).max(100).default(20);
const Flag = z.enum(['true', 'false']).transform((v) => v === 'true');

const UsersQuery = z
  .object({
    // A blank query is no query (surrounding whitespace is dropped).
    query: storedText(1, 254)
      .transform((q) => q.trim() || undefined)
      .optional(),
    status: z.enum(USER_STATUSES).optional(),
    limit: Limit,
    cursor: UserCursor.optional(),
  })
  .strict();
const EventsQuery = z
  .object({
    user_id: z.string().uuid().optional(),
    type: z
      .string()
      .min(1)
      .max(100)
      .regex(/^[a-z_.]+\*?$/, 'letters, dots and underscores; `prefix.*` for a prefix')
      .optional(),
    limit: Limit,
    cursor: EventCursor.optional(),
  })
  .strict();
const SelfQuery = z.object({ confirm_self: Flag.optional() }).strict();
const RoleName = z.string().regex(ROLE_NAME, 'a role name: a lower-case letter, then up to 31 lower-case letters, digits, _ or -');
const InviteBody = z
  .object({
    email: Email,
    name: UserName.optional(),
    roles: z.array(RoleName).max(31).default([]).describe('roles besides `user`; not `admin` (grant it after acceptance)'),
  })
  .strict();
const InvitationSchema = z.object({
  user_id: z.string().uuid(),
  email: z.string(),
  roles: z.array(z.string()),
  invited_by: z.string().uuid().nullable(),
  created_at: z.string(),
  expires_at: z.string(),
  status: z.enum(['pending', 'accepted', 'expired']),
});
const RoleParams = z.object({
  id: z.string().uuid(),
  role: RoleName.describe('the role, e.g. admin'),
});

/** A free-text note for the audit trail; surrounding whitespace is dropped, a blank note is no note. */
const Reason = storedText(1, 500)
  .transform((s) => s.trim() || undefined)
  .optional();
const ReasonBody = z.object({ reason: Reason }).strict();
const LockBody = z
  .object({
    reason: Reason,
    duration_seconds: z
      .number()
      .int()
      .min(1)
      .max(365 * 24 * 3600)
      .optional()
      .describe('omit to lock until an admin unlocks'),
  })
  .strict();

const UserOut = z.object({ user: UserSchema });
const UserDetail = z.object({
  user: UserSchema,
  locked_until: z.string().nullable(),
  deletion: DeletionSchema.extend({ workflow_status: z.string().nullable() }).nullable(),
});
const AuditEventSchema = z.object({
  id: z.string(),
  type: z.string(),
  user_id: z.string().nullable(),
  actor_id: z.string().nullable(),
  ip: z.string().nullable(),
  request_id: z.string().nullable(),
  data: z.record(z.string(), z.unknown()),
  created_at: z.string(),
});

export function adminRouter(deps: AppDeps): Router {
  const r = new Router({ prefix: '/v1/admin' });
  r.use(requireAuth(deps.tokens), requireRole('admin'), requireLiveAdmin(deps));

  /** A bare request is an empty body; anything sent must be the documented object (not null, [] or a string). */
  const optionalBody = (ctx: Koa.Context): unknown => (ctx.request.body === undefined ? {} : ctx.request.body);

  /** The target id; acting on oneself needs `?confirm_self=true`. */
  function target(ctx: Koa.Context, selfSensitive: boolean): string {
    const { id } = parse(Id, ctx.params, 'path');
    if (selfSensitive) {
      // Parsed whatever the target, so a malformed flag is a 400 for every id, as documented.
      const { confirm_self } = parse(SelfQuery, ctx.query, 'query');
      if (id === ctx.state.auth!.sub && !confirm_self)
        throw new AppError('self_action_not_confirmed', 'this acts on your own account; repeat with ?confirm_self=true if you mean it');
    }
    return id;
  }

  async function notify(userId: string, template: NotificationTemplate, key: string, log: Koa.Context['state']['log']) {
    try {
      await deps.flows.notify(`${key}:${userId}`, { userId, template });
    } catch (err) {
      // The change is committed and audited; the notice is best effort.
      log?.warn({ userId, template, err: (err as Error).message }, 'notice not started');
    }
  }

  const selfQuery = SelfQuery;
  const byId = (summary: string, extra: Partial<Parameters<typeof describe>[2]> = {}) => ({
    summary,
    tags: ['admin'],
    auth: 'admin' as const,
    params: Id,
    responses: {},
    ...extra,
  });

  describe('get', '/v1/admin/users', {
    ...byId('Search users (newest first) by e-mail, name or id, and status; cursor pagination'),
    query: UsersQuery,
    responses: {
      200: { description: 'a page of users', schema: z.object({ users: z.array(UserSchema), next_cursor: z.string().nullable() }) },
    },
  });
  r.get('/users', async (ctx) => {
    const q = parse(UsersQuery, ctx.query, 'query');
    const { users, nextCursor } = await deps.admin.search(q);
    ctx.body = { users: users.map(publicUser), next_cursor: nextCursor };
  });

  describe('get', '/v1/admin/users/:id', {
    ...byId('One user, with lock and deletion details'),
    responses: { 200: { description: 'the user', schema: UserDetail }, 404: { description: 'no such user' } },
  });
  r.get('/users/:id', async (ctx) => {
    const id = target(ctx, false);
    const { user, deletion } = await deps.admin.user(id);
    ctx.body = { user: publicUser(user), locked_until: user.locked_until?.toISOString() ?? null, deletion };
  });

  const conflict = {
    404: { description: 'no such user' },
    409: {
      description:
        'invalid_transition (not legal from the current status), self_action_not_confirmed, or last_admin (lock, suspension or deletion of the last active administrator)',
    },
  };

  describe('post', '/v1/admin/users/:id/lock', {
    ...byId('Lock an active account (until unlocked, or for duration_seconds); ends its sessions'),
    query: selfQuery,
    body: LockBody,
    bodyOptional: true,
    responses: { 200: { description: 'locked', schema: UserOut }, ...conflict },
  });
  r.post('/users/:id/lock', async (ctx) => {
    const id = target(ctx, true);
    const body = parse(LockBody, optionalBody(ctx));
    const until = body.duration_seconds ? new Date(Date.now() + body.duration_seconds * 1000) : null;
    const user = await deps.admin.lock(id, { until, note: body.reason }, requestMeta(ctx));
    ctx.body = { user: publicUser(user) };
  });

  describe('post', '/v1/admin/users/:id/unlock', {
    ...byId('Unlock a locked account (also resets the lockout escalation)'),
    body: ReasonBody,
    bodyOptional: true,
    responses: { 200: { description: 'unlocked', schema: UserOut }, ...conflict },
  });
  r.post('/users/:id/unlock', async (ctx) => {
    const id = target(ctx, false);
    const body = parse(ReasonBody, optionalBody(ctx));
    const user = await deps.admin.unlock(id, body.reason, requestMeta(ctx));
    ctx.body = { user: publicUser(user) };
  });

  describe('post', '/v1/admin/users/:id/suspend', {
    ...byId('Suspend an account: no login or refresh, sessions end at once, the user is e-mailed'),
    query: selfQuery,
    body: ReasonBody,
    bodyOptional: true,
    responses: { 200: { description: 'suspended', schema: UserOut }, ...conflict },
  });
  r.post('/users/:id/suspend', async (ctx) => {
    const id = target(ctx, true);
    const body = parse(ReasonBody, optionalBody(ctx));
    const user = await deps.admin.suspend(id, body.reason, requestMeta(ctx));
    await notify(id, 'account_suspended', `account-suspended:${ctx.state.requestId}`, ctx.state.log);
    ctx.body = { user: publicUser(user) };
  });

  describe('post', '/v1/admin/users/:id/reactivate', {
    ...byId('Reactivate a suspended account, or cancel a pending deletion (the account becomes active)'),
    body: ReasonBody,
    bodyOptional: true,
    responses: { 200: { description: 'active again', schema: UserOut }, ...conflict },
  });
  r.post('/users/:id/reactivate', async (ctx) => {
    const id = target(ctx, false);
    const body = parse(ReasonBody, optionalBody(ctx));
    const user = await deps.admin.reactivate(id, body.reason, requestMeta(ctx));
    await notify(id, 'account_reactivated', `account-reactivated:${ctx.state.requestId}`, ctx.state.log);
    ctx.body = { user: publicUser(user) };
  });

  describe('post', '/v1/admin/users/:id/reset', {
    ...byId('Account reset: ends sessions, removes MFA, forgets devices, invalidates the password and starts the password-reset e-mail'),
    query: selfQuery,
    responses: { 200: { description: 'reset', schema: UserOut }, ...conflict },
  });
  r.post('/users/:id/reset', async (ctx) => {
    const id = target(ctx, true);
    const user = await deps.admin.reset(id, requestMeta(ctx));
    ctx.body = { user: publicUser(user) };
  });

  describe('delete', '/v1/admin/users/:id', {
    ...byId('Delete an account: pending_deletion now (sessions end), erasure after the grace period'),
    query: selfQuery,
    responses: { 202: { description: 'deletion scheduled', schema: z.object({ user: UserSchema, deletion: DeletionSchema }) }, ...conflict },
  });
  r.delete('/users/:id', async (ctx) => {
    const id = target(ctx, true);
    const { user, dueAt } = await deps.deletions.schedule(id, requestMeta(ctx), 'admin');
    ctx.status = 202;
    ctx.body = { user: publicUser(user), deletion: { due_at: dueAt.toISOString() } };
  });

  const roleAnswers = {
    200: { description: 'the account with its roles (also when nothing changed)', schema: UserOut },
    404: { description: 'no such user' },
  };
  describe('put', '/v1/admin/users/:id/roles/:role', {
    ...byId('Grant a role (idempotent; audited as role.granted); it appears in access tokens from the next refresh', { params: RoleParams }),
    responses: {
      ...roleAnswers,
      409: {
        description:
          'invalid_transition (an account pending deletion or deleted; admin only to an active account with a verified address) or conflict (at most 32 roles)',
      },
    },
  });
  r.put('/users/:id/roles/:role', async (ctx) => {
    const { id, role } = parse(RoleParams, ctx.params, 'path');
    const { user } = await deps.admin.grantRole(id, role, requestMeta(ctx));
    ctx.body = { user: publicUser(user) };
  });

  describe('delete', '/v1/admin/users/:id/roles/:role', {
    ...byId(
      'Revoke a role (idempotent; audited as role.revoked); access tokens issued before are refused at once, the next refresh carries the remaining roles',
      { params: RoleParams, query: selfQuery },
    ),
    responses: {
      ...roleAnswers,
      409: { description: 'conflict (every account keeps the user role), last_admin (admin of the last active administrator) or self_action_not_confirmed' },
    },
  });
  r.delete('/users/:id/roles/:role', async (ctx) => {
    const id = target(ctx, true);
    const { role } = parse(RoleParams, ctx.params, 'path');
    const { user } = await deps.admin.revokeRole(id, role, requestMeta(ctx));
    ctx.body = { user: publicUser(user) };
  });

  describe('post', '/v1/admin/invitations', {
    summary: 'Invite an address: the account exists at once (pending verification, no password), the invitation flow e-mails a code valid for INVITATION_TTL',
    description:
      'Accepting is verifying the address with the e-mailed code and choosing the password in the same step (the hosted verification page, or POST /v1/auth/verify-email with `token` and `password`). ' +
      'Audited as invitation.created, then invitation.accepted or invitation.expired.',
    tags: ['admin'],
    auth: 'admin',
    body: InviteBody,
    responses: {
      201: { description: 'invited', schema: z.object({ invitation: InvitationSchema }) },
      409: { description: 'conflict: an account with this address exists' },
    },
  });
  r.post('/invitations', async (ctx) => {
    const body = parse(InviteBody, ctx.request.body);
    const inv = await deps.invitations.invite({ email: body.email, name: body.name, roles: body.roles }, requestMeta(ctx));
    ctx.status = 201;
    ctx.body = {
      invitation: { ...inv, created_at: inv.created_at.toISOString(), expires_at: inv.expires_at.toISOString(), finished_at: undefined },
    };
  });

  describe('get', '/v1/admin/audit-events', {
    ...byId('Audit events (newest first) by user and type (`type=prefix.*` for a prefix); cursor pagination'),
    query: EventsQuery,
    responses: { 200: { description: 'a page of events', schema: z.object({ events: z.array(AuditEventSchema), next_cursor: z.string().nullable() }) } },
  });
  r.get('/audit-events', async (ctx) => {
    const q = parse(EventsQuery, ctx.query, 'query');
    const { events, nextCursor } = await deps.admin.auditEvents({ userId: q.user_id, type: q.type, limit: q.limit, cursor: q.cursor });
    ctx.body = { events, next_cursor: nextCursor };
  });

  return r;
}
