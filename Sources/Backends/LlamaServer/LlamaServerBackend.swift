import Foundation
import Logging

/// A sampler's own llama.cpp server (``ManagedLlamaServer``), talked to as an
/// OpenAI-compatible server (``OpenAICompatibleBackend``). Every path records the model file's
/// fingerprint (``ModelFileFingerprint``) as its model version.
public final class LlamaServerBackend: ModelBackend {
    /// The server to run and how to ask it.
    public struct Configuration: Sendable, Hashable {
        public var server: ManagedLlamaServer.Configuration
        public var api: OpenAIWire.API = .completions
        public var requestTimeout: Duration = .seconds(300)
        public var retry = RetryPolicy()
        /// On by default: llama.cpp's server counts only one choice's tokens in `usage`, and the
        /// log-probabilities give each path's exact token count.
        public var logProbabilities = true

        public init(server: ManagedLlamaServer.Configuration) {
            self.server = server
        }
    }

    public let configuration: Configuration
    public let server: ManagedLlamaServer
    private let logger: Logger
    private let client = ClientSlot()

    public init(configuration: Configuration, logger: Logger = Logger(label: "selfimprove.backend.llama-server")) {
        self.configuration = configuration
        self.logger = logger
        server = ManagedLlamaServer(configuration: configuration.server, logger: logger)
    }

    public func start() async throws {
        let fingerprint = try ModelFileFingerprint.of(path: configuration.server.modelPath)
        try await server.start()
        var openAI = OpenAICompatibleBackend.Configuration(baseURL: await server.baseURL)
        openAI.api = configuration.api
        // One HTTP request per server slot: more would only queue inside the server.
        openAI.concurrency = configuration.server.slots
        openAI.maxChoicesPerRequest = configuration.server.slots
        openAI.requestTimeout = configuration.requestTimeout
        openAI.retry = configuration.retry
        openAI.logProbabilities = configuration.logProbabilities
        openAI.modelVersion = fingerprint
        await client.set(try OpenAICompatibleBackend(configuration: openAI, logger: logger))
        logger.info("Model version", metadata: ["model_version": "\(fingerprint)"])
    }

    public func sample(_ request: SamplingRequest) async throws -> SamplingResponse {
        if let failure = await server.givenUp { throw failure }
        guard let backend = await client.backend else { throw BackendError("the llama-server backend was not started") }
        return try await backend.sample(request)
    }

    public func shutdown() async {
        await client.backend?.shutdown()
        await server.stop()
    }

    /// The HTTP backend, made once the server's port is known.
    private actor ClientSlot {
        var backend: OpenAICompatibleBackend?
        func set(_ backend: OpenAICompatibleBackend) { self.backend = backend }
    }
}
