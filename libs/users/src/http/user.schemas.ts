import { Type, type Static } from '@sinclair/typebox';

const Email = Type.String({ format: 'email', maxLength: 254 });
const Name = Type.String({ minLength: 1, maxLength: 100, pattern: '\\S' });

/** `POST /v1/users` body. Unknown fields are rejected (no mass assignment). */
export const CreateUserRequest = Type.Object(
  {
    email: Type.String({ format: 'email', maxLength: 254, description: 'Unique in any letter case' }),
    password: Type.String({ minLength: 10, maxLength: 256, description: 'At least 10 characters' }),
    name: Name,
  },
  { additionalProperties: false, $id: 'CreateUserRequest' },
);
export type CreateUserRequest = Static<typeof CreateUserRequest>;

/** `PATCH /v1/users/me`: only the name is writable; email, role, id, timestamps → 400. */
export const UpdateMeRequest = Type.Object({ name: Name }, { additionalProperties: false, $id: 'UpdateMeRequest' });
export type UpdateMeRequest = Static<typeof UpdateMeRequest>;

export const LoginRequest = Type.Object(
  { email: Email, password: Type.String({ minLength: 1, maxLength: 256 }) },
  { additionalProperties: false, $id: 'LoginRequest' },
);
export type LoginRequest = Static<typeof LoginRequest>;

export const RefreshRequest = Type.Object(
  { refreshToken: Type.String({ minLength: 1, maxLength: 512 }) },
  { additionalProperties: false, $id: 'RefreshRequest' },
);
export type RefreshRequest = Static<typeof RefreshRequest>;

export const TokenPairResponse = Type.Object(
  {
    accessToken: Type.String(),
    refreshToken: Type.String(),
    tokenType: Type.Literal('Bearer'),
    expiresIn: Type.Integer({ description: 'Access token lifetime in seconds' }),
  },
  { $id: 'TokenPairResponse' },
);

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

export const MeResponse = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    email: Type.String({ format: 'email' }),
    name: Type.String(),
    role: Type.Union([Type.Literal('customer'), Type.Literal('admin')]),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'MeResponse' },
);
export type MeResponse = Static<typeof MeResponse>;

export const PublicProfileResponse = Type.Object({ id: Type.String({ format: 'uuid' }), name: Type.String() }, { $id: 'PublicProfileResponse' });
