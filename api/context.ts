/** What handlers receive: the process's shared dependencies and services. */
import type { AccountService } from '../domain/accounts/accounts';
import type { Config } from '../platform/config';
import type { DeviceService } from '../domain/sessions/devices';
import type { KeyRing } from '../domain/sessions/signing-keys';
import type { Logger } from '../platform/logger';
import type { MfaService } from '../domain/accounts/mfa';
import type { PasswordResetService } from '../domain/accounts/password-reset';
import type { InvitationService } from '../domain/accounts/invitations';
import type { WebhookService } from '../domain/webhooks';
import type { ClientRegistry } from '../domain/oidc/clients';
import type { DeletionService } from '../domain/accounts/deletion';
import type { AdminService } from '../domain/accounts/admin';
import type { RateLimits } from '../domain/rate-limits';
import type { OpsService } from '../domain/ops/operations';
import type { ReadinessChecks } from '../platform/health';
import type { PayloadCodec } from '@temporalio/common';
import type { SessionService } from '../domain/sessions/sessions';
import type { TokenService } from '../domain/sessions/tokens';
import type { DpopService } from '../domain/sessions/dpop';
import type { TemporalFlows } from '../platform/temporal/flows';
import type { SignInService } from '../domain/oidc/sign-in';
import type { OidcStore } from '../domain/oidc/store';

export interface AppDeps {
  config: Config;
  logger: Logger;
  /** Every workflow start, signal, update and query the API makes. */
  flows: TemporalFlows;
  keys: KeyRing;
  tokens: TokenService;
  /** DPoP (RFC 9449) proof checks of token endpoints and resource requests. */
  dpop: DpopService;
  sessions: SessionService;
  accounts: AccountService;
  mfa: MfaService;
  devices: DeviceService;
  passwordResets: PasswordResetService;
  invitations: InvitationService;
  webhooks: WebhookService;
  /** Registered OpenID Connect clients. */
  clients: ClientRegistry;
  deletions: DeletionService;
  admin: AdminService;
  rateLimits: RateLimits;
  ops: OpsService;
  /** The OpenID provider's hosted sign-in and its store. */
  signIn: SignInService;
  oidcStore: OidcStore;
  readiness: ReadinessChecks;
  /** The codec the Temporal client encrypts with (the /codec endpoint serves the same). */
  payloadCodec: PayloadCodec;
}
