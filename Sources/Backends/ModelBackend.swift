import SelfImproveCore

/// What a sampler asks a model for: `n` paths continuing one prompt.
public struct SamplingRequest: Sendable, Hashable {
    public var prompt: String
    /// Paths to draw from this one prompt (prefix sharing through `n`).
    public var n: Int
    public var temperature: Double
    public var topP: Double
    public var maxTokens: Int
    public var stop: [String]
    /// Seed for reproducible sampling, where the backend supports one.
    public var seed: UInt64?
    /// How many of the most likely first tokens to report with each path (0: none); a judge
    /// reads its verdict's probability from them.
    public var firstTokenAlternatives = 0

    public init(prompt: String, n: Int = 1, temperature: Double = 0.7, topP: Double = 1, maxTokens: Int = 256,
                stop: [String] = [], seed: UInt64? = nil)
    {
        self.prompt = prompt
        self.n = n
        self.temperature = temperature
        self.topP = topP
        self.maxTokens = maxTokens
        self.stop = stop
        self.seed = seed
    }
}

/// A backend's answer to one ``SamplingRequest``.
public struct SamplingResponse: Sendable, Hashable {
    public var paths: [SampledPath]
    public var promptTokens: Int
    /// The model the paths came from (file hash or server-reported id), recorded with every path.
    public var modelVersion: String

    public init(paths: [SampledPath], promptTokens: Int, modelVersion: String) {
        self.paths = paths
        self.promptTokens = promptTokens
        self.modelVersion = modelVersion
    }
}

/// A source of reasoning paths: the synthetic simulator, an OpenAI-compatible server, ...
public protocol ModelBackend: Sendable {
    /// Draws `request.n` paths.
    /// - Throws: ``BackendError`` when the model cannot answer.
    func sample(_ request: SamplingRequest) async throws -> SamplingResponse

    /// Gets the backend ready before the first request (starts a managed model server, say).
    /// - Throws: ``BackendError`` when it cannot be made ready.
    func start() async throws

    /// Releases what the backend holds (connections, a managed server). Called once, last.
    func shutdown() async
}

extension ModelBackend {
    public func start() async throws {}
    public func shutdown() async {}
}

/// A backend failure, with what went wrong and where.
public struct BackendError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    /// Trying again cannot help: the backend fails the same way every time here (a server
    /// build that dies of SIGILL on this CPU, say). A sampler stops on such an error instead of
    /// failing lease after lease, and its supervisor does not restart it.
    public var permanent: Bool
    public init(_ message: String, permanent: Bool = false) {
        self.message = message
        self.permanent = permanent
    }
    public var description: String { "BackendError: \(message)" }
}
