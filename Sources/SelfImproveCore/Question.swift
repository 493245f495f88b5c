/// One question of a data set, ready to prompt with; the gold answer is optional.
public struct Question: Sendable, Hashable, Codable {
    public var id: String
    /// The text shown to the model (for multiple choice, with the choices).
    public var text: String
    public var kind: AnswerKind
    /// The labelled answer, used only for evaluation; nil for unlabelled data.
    public var gold: Answer?

    public init(id: String, text: String, kind: AnswerKind, gold: Answer? = nil) {
        self.id = id
        self.text = text
        self.kind = kind
        self.gold = gold
    }
}
