import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import SelfImproveCore
import Synchronization

/// A model behind an OpenAI-compatible HTTP server: vLLM, SGLang, TGI, Ollama, llama.cpp's
/// `llama-server` or a hosted API.
///
/// One ``SamplingRequest`` is one request with `n` choices, so the server shares the prompt's
/// prefix between the paths. A server that returns fewer choices than asked (some ignore `n`)
/// gets the rest as parallel single requests, and from then on only single requests.
///
/// Failures: a refused or dropped connection, a timeout, 408, 429 and 5xx replies, and replies
/// that are not the promised JSON are tried again after a jittered backoff (``RetryPolicy``;
/// `Retry-After` is honoured), each logged with the reply's first bytes; when the tries are
/// used up, ``sample(_:)`` throws a ``BackendError`` and the sampler reports the lease as
/// failed, so the coordinator leases it again. Other 4xx replies fail at once. The API key is
/// sent as a bearer token and never logged.
public final class OpenAICompatibleBackend: ModelBackend {
    /// Where the server is and how to talk to it.
    public struct Configuration: Sendable, Hashable {
        /// The server's root, e.g. `http://127.0.0.1:8080` (`/v1/...` is appended).
        public var baseURL: String
        public var api: OpenAIWire.API = .completions
        /// The `model` field of each request; servers with one model accept none.
        public var model: String?
        /// The environment variable holding the API key, if the server wants one.
        public var apiKeyEnvironmentVariable: String?
        /// HTTP requests in flight at once to this server, from this sampler.
        public var concurrency = 8
        /// Most choices (`n`) one request may ask for; larger requests are split. llama.cpp's
        /// server refuses an `n` above its slot count. None: no limit.
        public var maxChoicesPerRequest: Int?
        /// Longest wait for one request's reply.
        public var requestTimeout: Duration = .seconds(120)
        public var connectTimeout: Duration = .seconds(5)
        public var retry = RetryPolicy()
        /// Ask for token log-probabilities and record their sum with each path.
        public var logProbabilities = false
        /// Recorded with every path instead of the server-reported model id.
        public var modelVersion: String?

        public init(baseURL: String) {
            self.baseURL = baseURL
        }
    }

    public let configuration: Configuration
    private let client: HTTPClient
    private let url: String
    /// Read once from the environment; only ever put in an `Authorization` header.
    private let apiKey: String?
    private let slots: ConcurrencyLimiter
    private let logger: Logger
    /// Set once the server has answered a request for several choices with fewer.
    private let singleChoiceOnly = Atomic<Bool>(false)
    private let shutDown = Atomic<Bool>(false)

    /// - Throws: ``BackendError`` if the configured API key variable is not set.
    public init(configuration: Configuration, environment: [String: String] = ProcessInfo.processInfo.environment,
                logger: Logger = Logger(label: "selfimprove.backend.openai")) throws
    {
        self.configuration = configuration
        if let variable = configuration.apiKeyEnvironmentVariable {
            guard let key = environment[variable], !key.isEmpty else {
                throw BackendError("the API key variable \(variable) (backend.api_key_env) is not set")
            }
            apiKey = key
        } else {
            apiKey = nil
        }
        var base = configuration.baseURL
        while base.hasSuffix("/") { base.removeLast() }
        if base.hasSuffix("/v1") { base.removeLast(3) }
        url = base + configuration.api.path
        slots = ConcurrencyLimiter(limit: configuration.concurrency)
        self.logger = logger
        var http = HTTPClient.Configuration()
        http.timeout = .init(connect: Self.timeAmount(configuration.connectTimeout), read: Self.timeAmount(configuration.requestTimeout))
        http.connectionPool = .init(idleTimeout: .seconds(60),
                                    concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, configuration.concurrency))
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: http)
    }

    /// Closes the connection pool. Call once, when the node stops.
    public func shutdown() async {
        guard !shutDown.exchange(true, ordering: .relaxed) else { return }
        try? await client.shutdown()
    }

    deinit {
        // A client dropped without `shutdown()` (a failed start, a test that stops early) would
        // trap in AsyncHTTPClient; shutting down keeps it alive until its connections are closed.
        if !shutDown.load(ordering: .relaxed) { client.shutdown { _ in } }
    }

    public func sample(_ request: SamplingRequest) async throws -> SamplingResponse {
        guard request.n >= 1 else { throw BackendError("n must be at least 1, got \(request.n)") }
        let perRequest = singleChoiceOnly.load(ordering: .relaxed) ? 1 : min(request.n, configuration.maxChoicesPerRequest ?? request.n)
        let parts = try await withThrowingTaskGroup(of: (Int, Drawn).self) { group in
            for first in stride(from: 0, to: request.n, by: perRequest) {
                group.addTask { (first, try await self.draw(request, first: first, count: min(perRequest, request.n - first))) }
            }
            var parts: [(Int, Drawn)] = []
            for try await part in group { parts.append(part) }
            return parts.sorted { $0.0 < $1.0 }.map(\.1)
        }
        return SamplingResponse(paths: parts.flatMap(\.paths), promptTokens: parts.lazy.compactMap(\.promptTokens).first ?? 0,
                                modelVersion: configuration.modelVersion ?? parts.lazy.compactMap(\.model).first ?? "unknown")
    }

    /// Paths `first ..< first + count` of a request, and what the server said about them.
    private struct Drawn: Sendable {
        var paths: [SampledPath]
        var promptTokens: Int?
        var model: String?
    }

    /// Asks for `count` choices at once; whatever the server leaves out is drawn with single
    /// requests (and from then on, only single requests are sent).
    private func draw(_ request: SamplingRequest, first: Int, count: Int) async throws -> Drawn {
        let seed = { @Sendable (index: Int) in request.seed.map { $0 &+ UInt64(index) } }
        let reply = try await send(request, n: count, seed: seed(first))
        var drawn = Drawn(paths: Array(reply.paths.prefix(count)), promptTokens: reply.promptTokens, model: reply.model)
        guard drawn.paths.count < count else { return drawn }
        if !singleChoiceOnly.exchange(true, ordering: .relaxed) {
            logger.notice("The server returned fewer choices than asked; drawing paths with single requests from now on", metadata: [
                "url": "\(url)", "asked": "\(count)", "returned": "\(drawn.paths.count)",
            ])
        }
        let missing = drawn.paths.count ..< count
        let singles = try await withThrowingTaskGroup(of: (Int, SampledPath?).self) { group in
            for index in missing {
                group.addTask { (index, try await self.send(request, n: 1, seed: seed(first + index)).paths.first) }
            }
            var singles: [(Int, SampledPath?)] = []
            for try await single in group { singles.append(single) }
            return singles.sorted { $0.0 < $1.0 }.compactMap(\.1)
        }
        drawn.paths += singles
        return drawn
    }

    /// One request, tried again as the retry policy says.
    private func send(_ request: SamplingRequest, n: Int, seed: UInt64?) async throws -> OpenAIWire.Reply {
        let body = OpenAIWire.requestBody(api: configuration.api, model: configuration.model, request: request, n: n,
                                          seed: seed, logProbabilities: configuration.logProbabilities)
        var attempt = 0
        while true {
            attempt += 1
            let failure: AttemptFailure
            do {
                let reply = try await slots.run { try await self.attempt(body) }
                try Self.checkSizes(reply, maxTokens: request.maxTokens)
                if reply.repairedInvalidUTF8 || reply.nonFiniteLogProbabilities > 0 {
                    logger.warning("The model server's reply held invalid values; they were repaired", metadata: [
                        "url": "\(url)", "invalid_utf8": "\(reply.repairedInvalidUTF8)",
                        "non_finite_logprobs": "\(reply.nonFiniteLogProbabilities)",
                    ])
                }
                return reply
            } catch let error as AttemptFailure {
                failure = error
            }
            guard failure.retryable, attempt < configuration.retry.maxAttempts else {
                throw BackendError("POST \(url) failed after \(attempt) attempt\(attempt == 1 ? "" : "s"): \(failure.message)")
            }
            let wait = configuration.retry.delay(afterAttempt: attempt, retryAfter: failure.retryAfter)
            logger.warning("Model server request failed; trying again", metadata: [
                "url": "\(url)", "attempt": "\(attempt)", "retry_in_ms": "\(wait.milliseconds)", "error": "\(failure.message)",
            ])
            try await Task.sleep(for: wait)
        }
    }

    /// Why one try failed, and whether another may succeed.
    private struct AttemptFailure: Error {
        var message: String
        var retryable: Bool
        var retryAfter: Duration?
    }

    private func attempt(_ body: Data) async throws -> OpenAIWire.Reply {
        var http = HTTPClientRequest(url: url)
        http.method = .POST
        http.headers.add(name: "Content-Type", value: "application/json")
        if let apiKey { http.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        http.body = .bytes(ByteBuffer(data: body))
        let reply: Data
        let status: HTTPResponseStatus
        let retryAfter: Duration?
        do {
            let response = try await client.execute(http, timeout: Self.timeAmount(configuration.requestTimeout))
            status = response.status
            retryAfter = response.headers.first(name: "Retry-After").flatMap(Int.init).map { Duration.seconds($0) }
            var buffer = try await response.body.collect(upTo: 64 << 20)
            reply = buffer.readData(length: buffer.readableBytes) ?? Data()
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw AttemptFailure(message: Self.describe(error), retryable: true)
        }
        guard status == .ok else {
            let code = Int(status.code)
            let retryable = code == 408 || code == 429 || code >= 500
            throw AttemptFailure(message: "\(code) \(status.reasonPhrase): \(OpenAIWire.preview(reply))",
                                 retryable: retryable, retryAfter: retryable ? retryAfter : nil)
        }
        do {
            return try OpenAIWire.parseReply(reply, api: configuration.api)
        } catch {
            // Often a proxy's error page or a reply cut short: worth another try.
            throw AttemptFailure(message: "malformed reply: \(error)", retryable: true)
        }
    }

    /// Bytes a path may have per token asked for (UTF-8 of the longest tokens, with room).
    static let bytesPerToken = 64

    /// Refuses (for good: the server answered, wrongly) a reply with a path longer than
    /// `maxTokens` tokens can be, which would otherwise travel through the cluster into the
    /// training data.
    private static func checkSizes(_ reply: OpenAIWire.Reply, maxTokens: Int) throws(AttemptFailure) {
        let limit = max(64 << 10, maxTokens * bytesPerToken)
        for (index, path) in reply.paths.enumerated() where path.text.utf8.count > limit {
            throw AttemptFailure(
                message: "choice \(index) is \(path.text.utf8.count) bytes, more than \(maxTokens) tokens can be (\(limit) bytes at \(bytesPerToken) a token, at least 64 KiB); the reply is refused",
                retryable: false)
        }
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout: return "connection timed out"
            case .readTimeout, .deadlineExceeded: return "no reply in time"
            case .remoteConnectionClosed: return "the server closed the connection"
            default: return "\(error)"
            }
        }
        let text = "\(error)"
        if text.contains("refused") || text.contains("ECONNREFUSED") { return "connection refused" }
        return text
    }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        .nanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}
