/**
 * Roles by API (domain/accounts/roles.ts). Any role name of the documented shape may be granted,
 * so the schema's rule becomes that shape (every element a lower-case name of at most 32
 * characters, which holds no comma, so the joined array can be matched), `user` always present, at
 * most 32 roles, no role twice is the code's rule.
 *
 * A revoked role reaches access tokens at once: when an update of
 * `users.roles` removes a role, the account is recorded in `token_revocations` and announced, as
 * when it leaves `active` (migration 009's function), so every access token issued before is
 * refused and the next refresh carries the remaining roles.
 */
import { Sequelize } from 'sequelize';

export async function up(sequelize: Sequelize): Promise<void> {
  await sequelize.query(`
    ALTER TABLE users DROP CONSTRAINT users_roles_check;
    ALTER TABLE users ADD CONSTRAINT users_roles_check CHECK (
      'user' = ANY(roles)
      AND cardinality(roles) <= 32
      AND array_to_string(roles, ',') ~ '^[a-z][a-z0-9_-]{0,31}(,[a-z][a-z0-9_-]{0,31})*$'
    );
    CREATE TRIGGER users_roles_reduced AFTER UPDATE OF roles ON users
      FOR EACH ROW WHEN (NOT (NEW.roles @> OLD.roles))
      EXECUTE FUNCTION authflow_user_deactivated();
  `);
}
