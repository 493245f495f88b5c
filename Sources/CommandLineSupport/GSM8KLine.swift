/// A generated problem as a GSM8K-format data set line (`selfimprove dataset`, the benchmarks).
public struct GSM8KLine: Encodable {
    public let id: String
    public let question: String
    public let answer: String
    public let steps: Int

    public init(id: String, question: String, answer: String, steps: Int) {
        self.id = id
        self.question = question
        self.answer = answer
        self.steps = steps
    }
}
