import { Controller, Delete, Get, Header, HttpCode, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiConflictResponse, ApiCreatedResponse, ApiNoContentResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentUser, Public, ShedPriority, UuidParam, ValidBody, type AuthenticatedUser } from '@app/platform';
import { ProfilesService } from '../application/profiles.service';
import { RegisterUserService } from '../application/register-user.service';
import type { UserEntity } from '../persistence/user.entity';
import { CreateUserRequest, MeResponse, PublicProfileResponse, UpdateMeRequest, UserResponse } from './user.schemas';

const toMe = (user: UserEntity): MeResponse => ({
  id: user.id,
  email: user.email,
  name: user.name,
  role: user.role,
  createdAt: user.createdAt.toISOString(),
});

@ApiTags('users')
@ApiBearerAuth()
@Controller({ path: 'users', version: '1' })
export class UsersController {
  constructor(
    private readonly registerUser: RegisterUserService,
    private readonly profiles: ProfilesService,
  ) {}

  @Public()
  @Post()
  @HttpCode(201)
  @ApiCreatedResponse({ schema: UserResponse as never })
  @ApiConflictResponse({ description: 'Email already registered (case-insensitive)' })
  @ApiOperation({ operationId: 'registerUser', summary: 'Sign up', description: 'Creates an account (role `customer`) and sends a welcome notification.' })
  async register(@ValidBody(CreateUserRequest) body: CreateUserRequest): Promise<UserResponse> {
    const user = await this.registerUser.execute(body);
    return { id: user.id, email: user.email, name: user.name, createdAt: user.createdAt.toISOString() };
  }

  @Get('me')
  @ApiOkResponse({ schema: MeResponse as never })
  @ApiOperation({ operationId: 'getMe', summary: 'Read your own account' })
  async me(@CurrentUser() caller: AuthenticatedUser): Promise<MeResponse> {
    return toMe(await this.profiles.me(caller.userId));
  }

  @Patch('me')
  @ApiOkResponse({ schema: MeResponse as never })
  @ApiOperation({ operationId: 'updateMe', summary: 'Rename yourself' })
  async updateMe(@CurrentUser() caller: AuthenticatedUser, @ValidBody(UpdateMeRequest) body: UpdateMeRequest): Promise<MeResponse> {
    return toMe(await this.profiles.rename(caller.userId, body.name));
  }

  @Delete('me')
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'Account erased; users.user-deleted.v1 emitted; every session revoked' })
  @ApiOperation({ operationId: 'deleteMe', summary: 'Erase your account' })
  async deleteMe(@CurrentUser() caller: AuthenticatedUser): Promise<void> {
    await this.profiles.erase(caller.userId);
  }

  /** Public profile; the cached JSON text is sent as is (no parse/serialise round trip). */
  @Get(':id')
  @ShedPriority('sheddable')
  @Header('content-type', 'application/json; charset=utf-8')
  @ApiOkResponse({ schema: PublicProfileResponse as never })
  @ApiNotFoundResponse({ description: 'No such user (USER.NOT_FOUND)' })
  @ApiOperation({ operationId: 'getPublicProfile', summary: 'Read a user\'s public profile' })
  async publicProfile(@UuidParam('id') id: string): Promise<string> {
    return this.profiles.publicProfileJson(id);
  }
}
