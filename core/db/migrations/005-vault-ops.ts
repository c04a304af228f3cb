/** Schema changes of this feature area (empty until the feature needs one). */
import { Sequelize } from 'sequelize';

export async function up(_sequelize: Sequelize): Promise<void> {}
