import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { OutboxPublisher } from '@app/platform';
import { DataSource, QueryFailedError } from 'typeorm';
import { UserEvents, type UserRegisteredV1 } from '../contracts';
import { EmailTakenError } from '../domain/user.errors';
import { UserEntity } from '../persistence/user.entity';
import { PasswordHasher } from './password-hasher';

export interface RegisterUserCommand {
  email: string;
  password: string;
  name: string;
}

const UNIQUE_VIOLATION = '23505';

/** Creates an account and emits `users.user-registered.v1` in the same transaction. */
@Injectable()
export class RegisterUserService {
  constructor(
    @InjectDataSource('users') private readonly dataSource: DataSource,
    private readonly outbox: OutboxPublisher,
    private readonly hasher: PasswordHasher,
  ) {}

  async execute(command: RegisterUserCommand): Promise<UserEntity> {
    // Hash outside the transaction: it is the slow part and needs no database.
    const passwordHash = await this.hasher.hash(command.password);
    try {
      return await this.dataSource.transaction(async (manager) => {
        const user = manager.create(UserEntity, {
          id: randomUUID(),
          email: command.email.trim(),
          name: command.name.trim(),
          passwordHash,
          role: 'customer',
        });
        // INSERT … RETURNING fills the generated columns (created_at, updated_at): no read-back.
        const inserted = await manager.insert(UserEntity, user);
        const saved = manager.merge(UserEntity, user, inserted.generatedMaps[0] ?? {});
        const payload: UserRegisteredV1 = {
          userId: saved.id,
          email: saved.email,
          name: saved.name,
          registeredAt: saved.createdAt.toISOString(),
        };
        await this.outbox.publish(manager, [{ type: UserEvents.registered, payload }]);
        return saved;
      });
    } catch (error) {
      if (error instanceof QueryFailedError && (error.driverError as { code?: string }).code === UNIQUE_VIOLATION) {
        throw new EmailTakenError();
      }
      throw error;
    }
  }
}
