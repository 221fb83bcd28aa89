import { Type, type Static } from '@sinclair/typebox';

/** `POST /v1/users` body. Unknown fields are rejected (no mass assignment). */
export const CreateUserRequest = Type.Object(
  {
    email: Type.String({ format: 'email', maxLength: 254, description: 'Unique in any letter case' }),
    password: Type.String({ minLength: 10, maxLength: 256, description: 'At least 10 characters' }),
    name: Type.String({ minLength: 1, maxLength: 100, pattern: '\\S' }),
  },
  { additionalProperties: false, $id: 'CreateUserRequest' },
);
export type CreateUserRequest = Static<typeof CreateUserRequest>;

export const UserResponse = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    email: Type.String({ format: 'email' }),
    name: Type.String(),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'UserResponse' },
);
export type UserResponse = Static<typeof UserResponse>;
