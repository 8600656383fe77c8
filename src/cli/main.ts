import { Command } from 'commander';
import { registerApiKeyCommands } from './apikeys.js';
import { registerBrokerConfig } from './broker-config.js';
import { registerServe } from './serve.js';
import { registerSimulate } from './simulate.js';
import { registerUserCommands } from './users.js';

/** `fleetjobs`: the service and its administration. */
const program = new Command('fleetjobs').description(
  'Job service for IoT device fleets, speaking the Remote Manager v1/jobs API',
);
registerServe(program);
registerUserCommands(program);
registerApiKeyCommands(program);
registerSimulate(program);
registerBrokerConfig(program);

await program.parseAsync(process.argv);
