/// The methods a run can use, registered in one place: their names in the config
/// (`method.name`), in manifests and on records. A new method is a case here and a folder
/// under `Methods/` with its state machine and factory.
public enum MethodName: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// LMSI: m paths per question, a self-consistency vote, the majority's paths kept.
    case lmsi
    /// SCORE's data collection: solutions, critiques of the wrong ones, refinements.
    case refine
    /// SCORE at inference: one answer, refined when the verifiers doubt it (no training data).
    case verifyRefine = "verify_refine"
    /// AlphaLLM's search: a tree of steps per question, guided by critics.
    case search

    public var description: String { rawValue }

    /// The name a record carries (`TrainingRecord.method`): empty for LMSI, whose records came
    /// before the field.
    public var recordName: String { self == .lmsi ? "" : rawValue }

    /// The method of a record's `method` field (nil: a name this build does not know).
    public init?(recordName: String) {
        if recordName.isEmpty {
            self = .lmsi
        } else {
            self.init(rawValue: recordName)
        }
    }

    /// Whether the method's records come from a verifier's labels of right and wrong (it needs
    /// a verifier tier).
    public var needsVerifierLabels: Bool { self == .refine || self == .verifyRefine }
}
