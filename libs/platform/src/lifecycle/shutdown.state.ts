import { Injectable } from '@nestjs/common';

/** Flipped first on SIGTERM so readiness fails while in-flight work finishes. */
@Injectable()
export class ShutdownState {
  private draining = false;

  get isDraining(): boolean {
    return this.draining;
  }

  startDraining(): void {
    this.draining = true;
  }
}
