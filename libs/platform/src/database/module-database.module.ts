import type { DynamicModule } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';
import { dataSourceName, moduleDataSourceOptions, type ModuleDatabaseDefinition } from './module-database';

/**
 * The module's own TypeORM connection (its role, pool and timeouts) plus repositories
 * for its entities. Import it only from the module that owns `definition`.
 */
export function moduleDatabaseImports(definition: ModuleDatabaseDefinition): DynamicModule[] {
  const name = dataSourceName(definition.module);
  return [
    TypeOrmModule.forRootAsync({
      name,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        ...moduleDataSourceOptions(definition, config.databases[definition.module]),
        // Fail start-up promptly instead of retrying for minutes.
        retryAttempts: 3,
        retryDelay: 500,
      }),
    }),
    TypeOrmModule.forFeature(definition.entities as never[], name),
  ];
}
