/**
 * A long-running part of a process (the runner, the stream wake-ups, the archive, reconcile,
 * retention): started once its dependencies are, stopped before them. `stop()` must be safe to call
 * when `start()` never ran (a start-up that fails part-way closes everything).
 */
export interface Service {
  readonly name: string;
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
}

/** Services started in order and stopped in reverse, so each stops while what it uses still runs. */
export class ServiceList {
  readonly #services: readonly Service[];

  constructor(services: readonly Service[]) {
    this.#services = services;
  }

  get names(): string[] {
    return this.#services.map((s) => s.name);
  }

  async start(): Promise<void> {
    for (const service of this.#services) await service.start();
  }

  async stop(): Promise<void> {
    for (const service of [...this.#services].reverse()) await service.stop();
  }
}
