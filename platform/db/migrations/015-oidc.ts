/**
 * OpenID Connect provider storage (api/oidc/, domain/oidc/).
 *
 * `oidc_clients`: registered relying parties (domain/oidc/clients.ts is the one writer). A client
 * secret is shown once at creation and stored only as its SHA-256 (secrets are 256-bit random, so
 * a fast hash is enough); symmetric client authentication (`client_secret_jwt`) therefore stays off.
 *
 * `oidc_models`: every model oidc-provider persists (sessions, interactions, grants, codes, tokens,
 * replay records), one row per (model, id), written only through the adapter in
 * domain/oidc/store.ts. `consumed_at` is set by one conditional UPDATE, so a code or refresh token
 * is consumed at most once even under parallel requests. `account_id` and `grant_id` let "end every
 * session of a user" and erasure find a user's grants; expired rows are deleted by the cleanup.
 */
import { Sequelize } from 'sequelize';

export async function up(sequelize: Sequelize): Promise<void> {
  await sequelize.query(`
    CREATE TABLE oidc_clients (
      client_id                  text PRIMARY KEY CHECK (client_id ~ '^[A-Za-z0-9_-]{8,64}$'),
      client_name                text NOT NULL CHECK (length(client_name) BETWEEN 1 AND 200),
      redirect_uris              text[] NOT NULL DEFAULT '{}',
      post_logout_redirect_uris  text[] NOT NULL DEFAULT '{}',
      grant_types                text[] NOT NULL,
      token_endpoint_auth_method text NOT NULL
        CHECK (token_endpoint_auth_method IN ('none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt')),
      jwks_uri                   text,
      first_party                boolean NOT NULL DEFAULT false,
      secret_sha256              bytea,
      created_by                 uuid REFERENCES users(id) ON DELETE SET NULL,
      created_at                 timestamptz NOT NULL DEFAULT now(),
      updated_at                 timestamptz NOT NULL DEFAULT now(),
      CHECK ((token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post')) = (secret_sha256 IS NOT NULL))
    );

    CREATE TABLE oidc_models (
      model       text NOT NULL,
      id          text NOT NULL,
      payload     jsonb NOT NULL,
      grant_id    text,
      user_code   text,
      uid         text,
      account_id  text,
      expires_at  timestamptz,
      consumed_at timestamptz,
      PRIMARY KEY (model, id)
    );
    CREATE INDEX oidc_models_grant ON oidc_models (grant_id) WHERE grant_id IS NOT NULL;
    CREATE INDEX oidc_models_uid ON oidc_models (model, uid) WHERE uid IS NOT NULL;
    CREATE INDEX oidc_models_user_code ON oidc_models (model, user_code) WHERE user_code IS NOT NULL;
    CREATE INDEX oidc_models_account ON oidc_models (account_id) WHERE account_id IS NOT NULL;
    CREATE INDEX oidc_models_expiry ON oidc_models (expires_at) WHERE expires_at IS NOT NULL;
  `);
}
