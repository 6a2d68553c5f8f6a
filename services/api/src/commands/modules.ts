import { blogCommands, type CommandModule } from './commands';

/** Every set of commands the API offers as mutations (their schema and resolvers). */
export const COMMAND_MODULES: readonly CommandModule[] = [blogCommands];
