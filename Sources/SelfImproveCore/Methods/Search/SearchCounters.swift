/// What a search did, per question (summed over a run in the coordinator's counts).
public struct SearchCounters: Sendable, Hashable, Codable {
    public var simulations = 0
    /// Nodes added to the tree.
    public var expansions = 0
    /// Steps drawn (added, merged or empty).
    public var stepsDrawn = 0
    public var merged = 0
    public var emptySteps = 0
    public var rollouts = 0
    /// Texts sent to the critics.
    public var criticCalls = 0
    /// Completion tokens of expansions and rollouts.
    public var completionTokens = 0
    /// The search ended before its budget because no node could grow any more (trees of a
    /// run: how many ended so).
    public var exhausted = false

    public init() {}

    public static func += (lhs: inout SearchCounters, rhs: SearchCounters) {
        lhs.simulations += rhs.simulations
        lhs.expansions += rhs.expansions
        lhs.stepsDrawn += rhs.stepsDrawn
        lhs.merged += rhs.merged
        lhs.emptySteps += rhs.emptySteps
        lhs.rollouts += rhs.rollouts
        lhs.criticCalls += rhs.criticCalls
        lhs.completionTokens += rhs.completionTokens
        lhs.exhausted = lhs.exhausted || rhs.exhausted
    }

    enum CodingKeys: String, CodingKey {
        case simulations, expansions, merged, rollouts, exhausted
        case stepsDrawn = "steps_drawn"
        case emptySteps = "empty_steps"
        case criticCalls = "critic_calls"
        case completionTokens = "completion_tokens"
    }
}
