/**
 * The `msgkit` command line: commands, options and help (commander), and how a run ends (an exit
 * code from exit-codes.ts, errors printed by output.ts). `run(argv)` never calls process.exit.
 */
import { createRequire } from 'node:module'
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import type { CommandContext } from './commands/context.js'
import * as dlq from './commands/dlq.js'
import { health } from './commands/health.js'
import { provision } from './commands/provision.js'
import { send } from './commands/send.js'
import { tail } from './commands/tail.js'
import type { GlobalOptions } from './connect.js'
import { type ExitCode, ExitCodes } from './exit-codes.js'
import { createOutput } from './output.js'

const { version } = createRequire(import.meta.url)('../package.json') as { version: string }

export interface RunOptions {
  /** aborting it stops the command as Ctrl-C does (bin.ts wires SIGINT / SIGTERM to it) */
  signal?: AbortSignal
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean }
  stdout?: NodeJS.WritableStream
  stderr?: NodeJS.WritableStream & { isTTY?: boolean }
}

const int = (what: string) => (value: string) => {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${what} must be a whole number.`)
  return n
}
const repeat = (value: string, previous: string[]) => [...previous, value]

const EXIT_CODES_HELP = `
Broker: --url <url> or the environment variable MSGKIT_URL (the URL your services use), e.g.
  amqp://guest:guest@localhost:5672   kafka://localhost:9092   stomp://localhost:61613   sqs://eu-west-1
The adapter package must be installed next to msgkit (npm install @msgkit/rabbitmq, …).

Exit codes:
  0  done                                  5  the transport cannot do this
  1  unexpected error (please report it)   6  the broker refused or timed out the operation
  2  wrong usage or an invalid name        7  finished, but left something undone (see the message)
  3  no URL, bad config, adapter missing   8  you answered no at the prompt
  4  broker unreachable, login refused   130  interrupted (Ctrl-C); what was done is summarized`

const TAIL_HELP = `
Without --group, tail reads as a temporary group of its own that is removed when it exits: it
never takes messages from a service's group, and sees what is published while it runs.
With --group <name> it joins that group and acks what it prints (the messages are taken from it).`

const REDRIVE_HELP = `
Dead letters go back into the group's own storage only: other groups of the topic do not get them
again. Each message keeps its id, key and headers, gets a fresh retry budget, and its dead letter is
removed only after the broker confirmed the copy, so an interrupted redrive loses nothing.
Filters (repeatable, all must match): reason=handler-failed, error=<text in the error message>,
error-name=<name>, key=<key>, id=<id>, header.<name>=<value>.
On transports that cannot send to one group (Kafka), --to-topic re-publishes to the topic instead:
every group of the topic then gets the messages again.`

/** Runs `msgkit` with `argv` (without the node and script paths); resolves with the exit code. */
export async function run(argv: readonly string[], io: RunOptions = {}): Promise<ExitCode> {
  const stdout = io.stdout ?? process.stdout
  const stderr = io.stderr ?? process.stderr
  const signal = io.signal ?? new AbortController().signal
  let exitCode: ExitCode = ExitCodes.ok
  let globals: GlobalOptions = { json: false, quiet: false, verbose: false }
  const context = (command: Command): CommandContext => {
    const o = command.optsWithGlobals() as Partial<GlobalOptions>
    globals = { json: Boolean(o.json), quiet: Boolean(o.quiet), verbose: Boolean(o.verbose) }
    if (o.url !== undefined) globals.url = o.url
    const output = createOutput({ json: globals.json, quiet: globals.quiet, stdout, stderr })
    return { options: globals, output, signal, stdin: io.stdin ?? process.stdin }
  }
  /** wraps an action: its exit code, or its error printed and mapped to one */
  const act =
    <A extends unknown[]>(fn: (ctx: CommandContext, ...args: A) => Promise<ExitCode>) =>
    async (...args: A) => {
      const command = args[args.length - 1] as Command
      const ctx = context(command)
      try {
        exitCode = await fn(ctx, ...args)
      } catch (error) {
        exitCode = ctx.output.error(error)
      }
    }

  const program = new Command('msgkit')
    .description(
      'Send, tail, inspect and redrive messages on Kafka, RabbitMQ, ActiveMQ and SQS: the msgkit command line.',
    )
    .version(version, '-V, --version')
    .addOption(new Option('--url <url>', 'broker URL (default: $MSGKIT_URL); its password is never printed'))
    .option('--json', 'machine-readable output on stdout (NDJSON for send and tail)')
    .option('-q, --quiet', 'no progress or notes on stderr')
    .option('-v, --verbose', "the library's log lines on stderr")
    .showHelpAfterError('(msgkit --help, or msgkit <command> --help, shows the usage)')
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => stdout.write(text),
      writeErr: (text) => stderr.write(text),
    })

  program
    .command('send')
    .description('publish a message and print its receipt once the broker confirmed it')
    .argument('<topic>', 'topic to publish to')
    .option('--body <json>', 'the body, JSON by default (see --format)')
    .option('--file <path>', 'read the body from a file')
    .addOption(
      new Option('--format <format>', 'how to read the body')
        .choices(['json', 'text', 'binary'])
        .default('json'),
    )
    .option('-k, --key <key>', 'message key (same key = handled in order)')
    .option('-H, --header <name=value>', 'a header (repeatable)', repeat, [])
    .option('-n, --count <n>', 'publish the body this many times (each its own id)', int('--count'), 1)
    .addOption(
      new Option('--unroutable <policy>', 'when a message reaches no group: warn, reject (exit 6) or ignore')
        .choices(['warn', 'reject', 'ignore'])
        .default('warn'),
    )
    .option('--timeout <ms>', 'give up on a publish the broker has not confirmed by then', int('--timeout'))
    .addHelpText(
      'after',
      '\nWithout --body or --file the body is read from standard input: echo \'{"a":1}\' | msgkit send t',
    )
    .action(act((ctx, topic: string, options) => send(topic, options, ctx)))

  program
    .command('tail')
    .description('print messages as they arrive (body, headers, key, attempt)')
    .argument('<topic|pattern>', 'a topic, or a pattern: orders.* (one segment), orders.> (one or more)')
    .option('-g, --group <group>', 'join this group instead of a temporary one (consumes!)')
    .option('--from-start', 'start at the oldest message the broker keeps (brokers with a log: Kafka)')
    .option('-n, --limit <n>', 'exit after this many messages', int('--limit'))
    .addHelpText('after', TAIL_HELP)
    .action(act((ctx, target: string, options) => tail(target, options, ctx)))

  const dlqCommand = program
    .command('dlq')
    .description("a group's dead letters: list, show, redrive, purge")
    .addHelpText(
      'after',
      '\nDead letters of group G on topic T live on the topic T.G.dlq, kept for the group "dlq".',
    )
  const dlqOptions = (command: Command): Command =>
    command
      .argument('<topic>', 'the topic the messages failed on')
      .requiredOption('-g, --group <group>', 'the group whose handler failed')
  dlqOptions(dlqCommand.command('list'))
    .description('count the dead letters, oldest and newest, a summary of reasons and errors')
    .option('-n, --limit <n>', 'read at most this many (default 10000)', int('--limit'))
    .action(act((ctx, topic: string, options) => dlq.list(topic, options, ctx)))
  dlqOptions(dlqCommand.command('show'))
    .description('print dead letters: reason, error, attempts, time, headers, body')
    .option('-n, --limit <n>', 'show at most this many (default 20)', int('--limit'))
    .option('--id <id>', 'only the dead letter with this message id')
    .action(act((ctx, topic: string, options) => dlq.show(topic, options, ctx)))
  dlqOptions(dlqCommand.command('redrive'))
    .description('send dead letters back to the group they failed in, and remove them')
    .option('-f, --filter <name=value>', 'only matching dead letters (repeatable)', repeat, [])
    .option('-n, --limit <n>', 'move at most this many', int('--limit'))
    .option('--dry-run', 'only count what would move; change nothing')
    .option('--to-topic', 're-publish to the topic: every group of it gets them again')
    .option('--idle <ms>', 'done when no dead letter arrives for this long', int('--idle'), 3_000)
    .addHelpText('after', REDRIVE_HELP)
    .action(act((ctx, topic: string, options) => dlq.redrive(topic, options, ctx)))
  dlqOptions(dlqCommand.command('purge'))
    .description('remove every dead letter of the group, for good (asks first)')
    .option('-y, --yes', 'do not ask')
    .option('--idle <ms>', 'done when no dead letter arrives for this long', int('--idle'), 3_000)
    .action(act((ctx, topic: string, options) => dlq.purge(topic, options, ctx)))

  program
    .command('health')
    .description('connect, report status and capabilities, and time one publish → delivery round trip')
    .option('--no-round-trip', 'only connect (the round trip publishes to the topic msgkit.health)')
    .option('--timeout <ms>', 'how long the round trip may take', int('--timeout'), 10_000)
    .action(act((ctx, options) => health(options, ctx)))

  program
    .command('provision')
    .description("make groups' storage exist before producers start (a deploy step; idempotent)")
    .argument('<topic...>', 'one or more topics')
    .option('-g, --group <group>', 'a group (repeatable); every topic gets every group', repeat, [])
    .action(
      act(async (ctx, topics: string[], options: { group: string[] }) => {
        if (options.group.length === 0) {
          ctx.output.error(
            new CommanderError(2, 'msgkit.usage', 'provision needs at least one --group <group>.'),
          )
          return ExitCodes.usage
        }
        return provision(topics, options.group, ctx)
      }),
    )

  try {
    await program.parseAsync([...argv], { from: 'user' })
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error
    // help and version end with 0; anything else commander refused is a usage error
    if (
      error.code === 'commander.helpDisplayed' ||
      error.code === 'commander.version' ||
      error.code === 'commander.help'
    )
      return ExitCodes.ok
    if (error.code === 'commander.executeSubCommandAsync' && error.exitCode === 0) return ExitCodes.ok
    return ExitCodes.usage
  }
  return exitCode
}
