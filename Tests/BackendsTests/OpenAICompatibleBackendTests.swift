import Backends
import Foundation
import Logging
import ScriptedHTTPServer
import SelfImproveCore
import Synchronization
import Testing

/// The HTTP backend against a server of the test's own that is slow, fails or talks nonsense.
@Suite("OpenAI-compatible backend")
struct OpenAICompatibleBackendTests {
    /// A completions reply with one choice per text.
    static func reply(_ texts: [String], model: String = "test-model") -> String {
        let choices = texts.enumerated().map { index, text in
            #"{"index":\#(index),"text":"\#(text)","finish_reason":"stop","logprobs":null}"#
        }
        return #"{"model":"\#(model)","choices":[\#(choices.joined(separator: ","))],"usage":{"prompt_tokens":3,"completion_tokens":\#(texts.count * 4)}}"#
    }

    /// The `n` a request asked for.
    static func n(_ request: ScriptedHTTPServer.Request) -> Int { request.json?["n"] as? Int ?? 1 }

    /// Answers every request with as many choices as it asks for.
    static func honest(_ number: Int, _ request: ScriptedHTTPServer.Request) -> ScriptedHTTPServer.Action {
        .json(reply((0 ..< n(request)).map { " path \($0) of request \(number). The answer is \($0)." }))
    }

    private func backend(_ server: ScriptedHTTPServer, _ edit: (inout OpenAICompatibleBackend.Configuration) -> Void = { _ in },
                         environment: [String: String] = [:], logger: Logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }) throws -> OpenAICompatibleBackend
    {
        var configuration = OpenAICompatibleBackend.Configuration(baseURL: server.baseURL)
        configuration.retry = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(10), maxDelay: .milliseconds(40))
        configuration.requestTimeout = .seconds(10)
        edit(&configuration)
        return try OpenAICompatibleBackend(configuration: configuration, environment: environment, logger: logger)
    }

    private let request = SamplingRequest(prompt: "Q: 2 + 2?\nA:", n: 4, temperature: 0.7, maxTokens: 32, stop: ["\nQ:"])

    @Test func oneRequestAsksForEveryPathWithN() async throws {
        let server = try await ScriptedHTTPServer(script: Self.honest)
        let backend = try backend(server)
        let response = try await backend.sample(request)
        #expect(response.paths.count == 4)
        #expect(response.modelVersion == "test-model")
        #expect(response.paths.map(\.completionTokens).reduce(0, +) == 16)
        #expect(server.requests.count == 1)
        let sent = try #require(server.requests.first)
        #expect(sent.uri == "/v1/completions")
        #expect(Self.n(sent) == 4)
        #expect(sent.json?["prompt"] as? String == request.prompt)
        #expect(sent.json?["stop"] as? [String] == ["\nQ:"])
        await backend.shutdown()
        await server.stop()
    }

    @Test func largeRequestsAreSplitAtTheChoiceLimit() async throws {
        let server = try await ScriptedHTTPServer(script: Self.honest)
        let backend = try backend(server) { $0.maxChoicesPerRequest = 3 }
        let response = try await backend.sample(SamplingRequest(prompt: "Q: x\nA:", n: 8, seed: 100))
        #expect(response.paths.count == 8)
        #expect(server.requests.map(Self.n).sorted() == [2, 3, 3])
        // Each part gets its own seed, so the parts do not repeat each other.
        #expect(Set(server.requests.compactMap { $0.json?["seed"] as? Int }) == [100, 103, 106])
        await backend.shutdown()
        await server.stop()
    }

    @Test func fewerChoicesThanAskedAreFilledWithSingleRequests() async throws {
        let server = try await ScriptedHTTPServer { number, _ in .json(Self.reply([" only one \(number)"])) }
        let backend = try backend(server)
        let first = try await backend.sample(request)
        #expect(first.paths.count == 4)
        #expect(server.requests.map(Self.n) == [4, 1, 1, 1])
        // From now on the backend asks for single paths straight away.
        let second = try await backend.sample(request)
        #expect(second.paths.count == 4)
        #expect(server.requests.count == 8)
        #expect(server.requests.suffix(4).allSatisfy { Self.n($0) == 1 })
        await backend.shutdown()
        await server.stop()
    }

    @Test func chatUsesTheChatEndpoint() async throws {
        let server = try await ScriptedHTTPServer { _, request in
            .json(#"{"choices":[{"index":0,"message":{"role":"assistant","content":"The answer is 4."},"finish_reason":"stop"}]}"#)
        }
        let backend = try backend(server) { $0.api = .chat }
        let response = try await backend.sample(SamplingRequest(prompt: "Q: 2 + 2?\nA:", n: 1))
        #expect(response.paths.map(\.text) == ["The answer is 4."])
        #expect(server.requests.first?.uri == "/v1/chat/completions")
        #expect((server.requests.first?.json?["messages"] as? [[String: String]])?.last?["content"] == "2 + 2?")
        await backend.shutdown()
        await server.stop()
    }

    @Test(arguments: [500, 502, 503, 429, 408])
    func transientStatusesAreRetried(status: Int) async throws {
        let server = try await ScriptedHTTPServer { number, request in
            number == 1 ? .reply(status: status, body: Data("busy".utf8), headers: [("Retry-After", "0")]) : Self.honest(number, request)
        }
        let backend = try backend(server)
        let response = try await backend.sample(request)
        #expect(response.paths.count == 4)
        #expect(server.requests.count == 2)
        await backend.shutdown()
        await server.stop()
    }

    @Test func aPersistentFailureEndsInABackendErrorAfterTheLastTry() async throws {
        let server = try await ScriptedHTTPServer { _, _ in .reply(status: 503, body: Data("loading model".utf8)) }
        let backend = try backend(server)
        await #expect {
            _ = try await backend.sample(request)
        } throws: { error in
            let message = (error as? BackendError)?.message ?? ""
            return message.contains("3 attempts") && message.contains("503") && message.contains("loading model")
        }
        #expect(server.requests.count == 3)
        await backend.shutdown()
        await server.stop()
    }

    @Test func clientErrorsAreNotRetried() async throws {
        let server = try await ScriptedHTTPServer { _, _ in
            .reply(status: 400, body: Data(#"{"error":{"message":"Field 'n': Value must be between 1 <= value <= 4"}}"#.utf8))
        }
        let backend = try backend(server)
        await #expect {
            _ = try await backend.sample(request)
        } throws: { error in
            ((error as? BackendError)?.message ?? "").contains("1 attempt: 400")
        }
        #expect(server.requests.count == 1)
        await backend.shutdown()
        await server.stop()
    }

    @Test(arguments: ["", "{\"choices\":[{\"text\":\"cut", "<html>gateway</html>", "{\"choices\":[]}"])
    func malformedRepliesAreRetriedAndThenReportedWithTheirStart(body: String) async throws {
        let server = try await ScriptedHTTPServer { _, _ in .json(body) }
        let backend = try backend(server)
        await #expect {
            _ = try await backend.sample(request)
        } throws: { error in
            let message = (error as? BackendError)?.message ?? ""
            return message.contains("malformed reply") && message.contains(body.isEmpty ? "(empty)" : String(body.prefix(8)))
        }
        #expect(server.requests.count == 3)
        await backend.shutdown()
        await server.stop()
    }

    @Test func aMalformedReplyThenAGoodOneLosesNothing() async throws {
        let server = try await ScriptedHTTPServer { number, request in
            number == 1 ? .json("{\"choices\":[{\"te") : Self.honest(number, request)
        }
        let backend = try backend(server)
        #expect(try await backend.sample(request).paths.count == 4)
        await backend.shutdown()
        await server.stop()
    }

    @Test func truncatedBodiesAndHangUpsAreRetried() async throws {
        let server = try await ScriptedHTTPServer { number, request in
            switch number {
            case 1: .truncate(body: Data(#"{"choices":[{"text":"#.utf8), promised: 500)
            case 2: .hangUp
            default: Self.honest(number, request)
            }
        }
        let backend = try backend(server) { $0.retry.maxAttempts = 4 }
        #expect(try await backend.sample(request).paths.count == 4)
        #expect(server.requests.count == 3)
        await backend.shutdown()
        await server.stop()
    }

    @Test func slowRepliesTimeOutAndAreRetried() async throws {
        let server = try await ScriptedHTTPServer { number, request in
            number == 1 ? .reply(status: 200, body: Data(Self.reply([" late"]).utf8), delay: .seconds(30)) : Self.honest(number, request)
        }
        let backend = try backend(server) { $0.requestTimeout = .milliseconds(300) }
        let started = ContinuousClock.now
        #expect(try await backend.sample(request).paths.count == 4)
        // The timeout ended the first request, not its reply 30 s later (a generous bound: a
        // loaded machine cannot fail it).
        #expect(ContinuousClock.now - started < .seconds(15))
        #expect(server.requests.count == 2)
        await backend.shutdown()
        await server.stop()
    }

    @Test func aRefusedConnectionIsReportedAfterTheRetries() async throws {
        let server = try await ScriptedHTTPServer(script: Self.honest)
        let url = server.baseURL
        await server.stop()   // nothing listens there any more
        var configuration = OpenAICompatibleBackend.Configuration(baseURL: url)
        configuration.retry = RetryPolicy(maxAttempts: 2, baseDelay: .milliseconds(10), maxDelay: .milliseconds(20))
        let backend = try OpenAICompatibleBackend(configuration: configuration, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        await #expect {
            _ = try await backend.sample(request)
        } throws: { error in
            ((error as? BackendError)?.message ?? "").contains("2 attempts: connection refused")
        }
        await backend.shutdown()
    }

    @Test func theAPIKeyIsSentAsABearerTokenAndNeverLogged() async throws {
        let secret = "sk-test-\(UInt64.random(in: 1 ... .max))"
        let records = LogRecords()
        var logger = Logger(label: "test") { _ in records }
        logger.logLevel = .trace
        let server = try await ScriptedHTTPServer { number, request in
            number == 1 ? .reply(status: 500, body: Data("oops".utf8)) : Self.honest(number, request)
        }
        let backend = try backend(server, { $0.apiKeyEnvironmentVariable = "TEST_KEY" }, environment: ["TEST_KEY": secret], logger: logger)
        _ = try await backend.sample(request)
        #expect(server.requests.allSatisfy { $0.header("Authorization") == "Bearer \(secret)" })
        #expect(!records.text.isEmpty)   // the retry was logged ...
        #expect(!records.text.contains(secret))   // ... without the key
        #expect(!"\(backend.configuration)".contains(secret))
        await backend.shutdown()
        await server.stop()
    }

    @Test func aMissingAPIKeyVariableIsAnErrorAtStart() throws {
        var configuration = OpenAICompatibleBackend.Configuration(baseURL: "http://127.0.0.1:9")
        configuration.apiKeyEnvironmentVariable = "SELFIMPROVE_TEST_UNSET_KEY"
        #expect(throws: BackendError("the API key variable SELFIMPROVE_TEST_UNSET_KEY (backend.api_key_env) is not set")) {
            _ = try OpenAICompatibleBackend(configuration: configuration, environment: [:])
        }
    }

    /// A completion far longer than `max_tokens` could produce is refused at once (not retried,
    /// not passed on into the cluster and the training data), with what was wrong.
    @Test(.timeLimit(.minutes(1)))
    func aFiftyMegabyteCompletionIsRefused() async throws {
        let huge = String(repeating: "7", count: 50 << 20)
        let reply = Self.reply([huge])
        let server = try await ScriptedHTTPServer(script: { _, _ in .json(reply) })
        let client = try backend(server)
        do {
            _ = try await client.sample(SamplingRequest(prompt: "Q: x\nA:", n: 1, maxTokens: 256))
            Issue.record("a 50 MB completion was accepted")
        } catch let error as BackendError {
            #expect(error.message.contains("choice 0 is 52428800 bytes, more than 256 tokens can be"), "\(error.message.prefix(300))")
        }
        #expect(server.requests.count == 1, "the refused reply was asked for again")
        await client.shutdown()
        await server.stop()
    }

    /// Invalid UTF-8 in a text and NaN or infinite log-probabilities (bare literals, as Python
    /// servers write them) are repaired, not fatal: the path is kept, with U+FFFD for the bad
    /// bytes and no log-probability.
    @Test(.timeLimit(.minutes(1)))
    func invalidUTF8AndNaNLogProbabilitiesAreRepaired() async throws {
        var body = Data(#"{"choices":[{"index":0,"text":"The answer is 4"#.utf8)
        body.append(contentsOf: [0xFF, 0xFE])
        body.append(contentsOf: Data(#".","finish_reason":"stop","logprobs":{"token_logprobs":[-0.5,NaN,-Infinity]}}],"usage":{"completion_tokens":3}}"#.utf8))
        let reply = body
        let server = try await ScriptedHTTPServer(script: { _, _ in .reply(status: 200, body: reply, headers: [("Content-Type", "application/json")]) })
        let client = try backend(server) { $0.logProbabilities = true }
        let response = try await client.sample(SamplingRequest(prompt: "Q: 2 + 2?\nA:", n: 1, maxTokens: 32))
        let path = try #require(response.paths.first)
        #expect(path.text == "The answer is 4\u{FFFD}\u{FFFD}.")
        #expect(path.logProbability == nil)
        #expect(path.completionTokens == 3)
        #expect(server.requests.count == 1)
        await client.shutdown()
        await server.stop()
    }
}

/// Collects what a logger writes, as text.
final class LogRecords: LogHandler, Sendable {
    private let lines = Mutex<[String]>([])
    var text: String { lines.withLock { $0.joined(separator: "\n") } }

    func log(event: LogEvent) {
        lines.withLock { $0.append("\(event.message) \(event.metadata ?? [:])") }
    }

    subscript(metadataKey _: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }

    var metadata: Logger.Metadata {
        get { [:] }
        set {}
    }

    var logLevel: Logger.Level {
        get { .trace }
        set {}
    }
}
