import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

export type UserRole = 'customer' | 'admin';

@Entity({ name: 'users', schema: 'users' })
export class UserEntity {
  @PrimaryColumn('uuid')
  id!: string;

  /** As the user typed it; uniqueness is on lower(email) (see migration). */
  @Column('text')
  email!: string;

  @Column('text')
  name!: string;

  @Column('text', { name: 'password_hash' })
  passwordHash!: string;

  @Column('text', { default: 'customer' })
  role!: UserRole;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
