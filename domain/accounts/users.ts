/** The public shape of a user (API.md) and e-mail normalisation. */
import type { User } from '../../platform/db/models';

export interface PublicUser {
  id: string;
  email: string | null;
  name: string | null;
  status: string;
  email_verified: boolean;
  mfa_enabled: boolean;
  roles: string[];
  created_at: string;
}

export function publicUser(u: User): PublicUser {
  return {
    id: u.id,
    email: u.email,
    name: u.name,
    status: u.status,
    email_verified: !!u.email_verified_at,
    mfa_enabled: u.mfa_enabled,
    roles: u.roles,
    created_at: new Date(u.created_at).toISOString(),
  };
}

/** Trim, Unicode-normalise and lowercase the whole address (one mailbox per address, case-insensitive). */
export function normaliseEmail(email: string): string {
  return email.normalize('NFKC').trim().toLowerCase();
}
export { USER_STATUSES, type UserStatus } from '../../platform/db/models';
