import { Module, type DynamicModule } from '@nestjs/common';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';
import { ROOT_LOGGER } from '../logging/logging.module';
import { dataSourceName, moduleDataSourceOptions, type ModuleDatabaseDefinition } from './module-database';
import { ReadReplicas, ReplicaReader, replicaDataSourceOptions, replicaReaderToken } from './read-replica';

/** Holds one module's ReplicaReader (one dynamic instance per module). */
@Module({})
class ModuleReplicaReaderModule {}

/**
 * The module's own TypeORM connection (its role, pool and timeouts), repositories for its
 * entities, and its ReplicaReader (`@InjectReplicaReader(module)`, read-replica.ts). Import
 * it only from the module that owns `definition`.
 */
export function moduleDatabaseImports(definition: ModuleDatabaseDefinition): DynamicModule[] {
  const name = dataSourceName(definition.module);
  const token = replicaReaderToken(definition.module);
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
    {
      module: ModuleReplicaReaderModule,
      providers: [
        {
          provide: token,
          inject: [getDataSourceToken(name), ReadReplicas, APP_CONFIG, ROOT_LOGGER],
          useFactory: (primary: DataSource, replicas: ReadReplicas, config: AppConfig, logger: Logger) => {
            const db = config.databases[definition.module];
            return new ReplicaReader(definition.module, primary, replicaDataSourceOptions(moduleDataSourceOptions(definition, db), db), replicas, config, logger);
          },
        },
      ],
      exports: [token],
    },
  ];
}
