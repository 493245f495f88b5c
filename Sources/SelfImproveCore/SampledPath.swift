/// A path a model drew: the one representation from the backend's reply to the method that
/// uses it and the record made of it (the wire types stay at the wire). A backend fills the
/// text and its figures; the coordinator's lease book adds who drew it (`sampler`, the model
/// version it served) when the path comes in.
public struct SampledPath: Sendable, Hashable {
    public var text: String
    public var completionTokens: Int
    /// `stop`, `length`, ... as the backend reports it.
    public var finishReason: String
    /// Sum of the tokens' log-probabilities, when the backend offers them.
    public var logProbability: Double?
    /// The most likely first tokens and their log-probabilities, when asked for
    /// (`SamplingRequest.firstTokenAlternatives`) and the backend offers them.
    public var firstTokenAlternatives: [String: Double]?
    /// The sampler that drew it (empty until the coordinator has it).
    public var sampler: String
    /// The model version the sampler served (empty until the coordinator has it).
    public var modelVersion: String

    public init(text: String, completionTokens: Int, finishReason: String, logProbability: Double? = nil,
                sampler: String = "", modelVersion: String = "") {
        self.text = text
        self.completionTokens = completionTokens
        self.finishReason = finishReason
        self.logProbability = logProbability
        self.sampler = sampler
        self.modelVersion = modelVersion
    }
}
