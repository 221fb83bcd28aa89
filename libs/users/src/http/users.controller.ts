import { Controller, HttpCode, Post } from '@nestjs/common';
import { ApiConflictResponse, ApiCreatedResponse, ApiTags } from '@nestjs/swagger';
import { ValidBody } from '@app/platform';
import { RegisterUserService } from '../application/register-user.service';
import { CreateUserRequest, UserResponse } from './user.schemas';

@ApiTags('users')
@Controller({ path: 'users', version: '1' })
export class UsersController {
  constructor(private readonly registerUser: RegisterUserService) {}

  @Post()
  @HttpCode(201)
  @ApiCreatedResponse({ schema: UserResponse as never })
  @ApiConflictResponse({ description: 'Email already registered (case-insensitive)' })
  async register(@ValidBody(CreateUserRequest) body: CreateUserRequest): Promise<UserResponse> {
    const user = await this.registerUser.execute(body);
    return { id: user.id, email: user.email, name: user.name, createdAt: user.createdAt.toISOString() };
  }
}
