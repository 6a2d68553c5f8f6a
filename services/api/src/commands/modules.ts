import { blogCommands, type CommandModule } from './commands';
import { tagCommands } from './tags';

/** Every set of commands the API offers as mutations (their schema and resolvers). */
export const COMMAND_MODULES: readonly CommandModule[] = [blogCommands, tagCommands];
