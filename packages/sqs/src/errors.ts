/**
 * The SQS/SNS error table: what the SDK or Node's HTTP stack said → the kit's failure kind, and the
 * typed, secret-free MsgkitError a user sees. Looked up by error name / AWS code (data, not regexes).
 */
import { type ErrorCode, ErrorCodes, isMsgkitError, MsgkitError } from '@msgkit/core'
import { type ErrorTable, type FailureKind, finalErrorCode, namesTable } from '@msgkit/core/adapter'

/** By `Code`, `code` or `name`. Not listed: a 5xx or a fault of AWS's side is transient, the rest fatal. */
const KINDS = namesTable<FailureKind>({
  // no answer: HTTP has no connection to lose, so a failed request stands for it (supervisor.lost)
  connection: `ECONNREFUSED ECONNRESET ECONNABORTED EPIPE ETIMEDOUT EHOSTUNREACH ENETUNREACH ENETDOWN ENOTFOUND
    EAI_AGAIN EADDRNOTAVAIL TimeoutError RequestTimeout NetworkingError`,
  // "not now"; a deleted queue or topic is declared again on the retry
  transient: `ThrottlingException Throttling Throttled RequestThrottled RequestThrottledException
    TooManyRequestsException KMSThrottlingException KmsThrottled ServiceUnavailable ServiceUnavailableException
    InternalError InternalFailure InternalErrorException QueueDoesNotExist AWS.SimpleQueueService.NonExistentQueue
    NotFoundException NotFound QueueDeletedRecently AWS.SimpleQueueService.QueueDeletedRecently`,
  auth: `InvalidClientTokenId UnrecognizedClientException SignatureDoesNotMatch IncompleteSignature
    InvalidSignatureException MissingAuthenticationToken MissingAuthenticationTokenException ExpiredToken
    ExpiredTokenException InvalidAccessKeyId InvalidSecurity AuthFailure CredentialsProviderError`,
})
const NOT_FOUND = /^(QueueDoesNotExist|AWS\.SimpleQueueService\.NonExistentQueue|NotFound|NotFoundException)$/
const TOO_LARGE = /^(AWS\.SimpleQueueService\.)?BatchRequestTooLong$/

interface AwsLikeError {
  name?: string
  Code?: string
  code?: string
  message?: string
  $fault?: string
  SenderFault?: boolean
  $metadata?: { httpStatusCode?: number }
}
const namesOf = (error: unknown): string[] => {
  const e = (error ?? {}) as AwsLikeError
  return [e.Code, e.code, e.name].filter((n): n is string => typeof n === 'string')
}

/** The queue or topic does not exist (deleted behind our back, or not provisioned yet). */
export const isNotFound = (error: unknown): boolean => namesOf(error).some((n) => NOT_FOUND.test(n))

/** One entry's failure in a batch answer, classified like an error the SDK threw. */
export const entryError = (entry: { Code?: string; Message?: string; SenderFault?: boolean }): Error =>
  Object.assign(new Error(`${entry.Code}: ${entry.Message ?? 'refused'}`), { name: entry.Code, ...entry })

/** The kind of an SDK, HTTP or batch-entry error (a MsgkitError the kit classifies itself). */
export function classifySqs(error: unknown): FailureKind {
  for (const name of namesOf(error)) {
    const kind = KINDS.get(name)
    if (kind) return kind
  }
  const e = (error ?? {}) as AwsLikeError
  if (/socket hang up|ECONNRESET|ECONNREFUSED/.test(String(e.message))) return 'connection'
  // a stopping server answers 503; a crashed one an HTML page the SDK cannot parse (status 500)
  const status = e.$metadata?.httpStatusCode ?? 0
  return status >= 500 || e.$fault === 'server' || e.SenderFault === false ? 'transient' : 'fatal'
}

const HINTS: Partial<Record<ErrorCode, string>> = {
  [ErrorCodes.AUTH_FAILED]: ' Check the credentials (SDK default chain, AWS_PROFILE, role) and the region.',
  [ErrorCodes.CONNECTION_FAILED]:
    ' Is the endpoint right and reachable (moto: scripts/brokers/sqs.sh status)?',
  [ErrorCodes.MESSAGE_TOO_LARGE]: ' Store the payload elsewhere (S3) and send a reference.',
}

/** The error table of one transport; `where` names the endpoint (never credentials). */
export function createSqsErrors(options: { where: string; scrub(text: string): string }): ErrorTable {
  return {
    classify: classifySqs,
    toError(error, { operation, topic, endpoint }) {
      if (isMsgkitError(error)) return error
      const kind = classifySqs(error)
      const awsCode = namesOf(error)[0] ?? 'Error'
      const text = options.scrub(String((error as AwsLikeError | null)?.message ?? error))
      let code = finalErrorCode(kind, operation)
      if (code === ErrorCodes.PUBLISH_REJECTED && TOO_LARGE.test(awsCode)) code = ErrorCodes.MESSAGE_TOO_LARGE
      const what = `SQS/SNS ${operation}${topic ? ` ${topic}` : ''} at ${endpoint ?? options.where}`
      return new MsgkitError(code, `${what} failed: ${awsCode}: ${text}.${HINTS[code] ?? ''}`, {
        retriable: kind === 'connection' || kind === 'transient',
        details: { operation, awsCode, ...(topic ? { topic } : {}) },
        cause: new Error(text),
      })
    },
  }
}
