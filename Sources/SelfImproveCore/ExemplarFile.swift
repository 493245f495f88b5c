import Foundation

/// Exemplar files: JSONL, one `{"question", "reasoning", "answer"}` per line (reasoning without
/// the final "The answer is" sentence).
public enum ExemplarFile {
    /// Decodes exemplar lines.
    /// - Throws: ``DatasetError`` naming the source and line of the first bad line.
    public static func decode<Lines: Sequence<String>>(_ lines: Lines, source: String) throws(DatasetError) -> [Exemplar] {
        var exemplars: [Exemplar] = []
        for (index, line) in lines.enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            do {
                exemplars.append(try JSONDecoder().decode(Exemplar.self, from: Data(line.utf8)))
            } catch {
                throw DatasetError(source: source, line: index + 1, reason: "not an exemplar {\"question\", \"reasoning\", \"answer\"}")
            }
        }
        guard !exemplars.isEmpty else { throw DatasetError(source: source, line: 0, reason: "no exemplars") }
        return exemplars
    }

    /// The project's own arithmetic exemplars (also in `cluster/exemplars/arithmetic.jsonl`).
    public static let arithmetic: [Exemplar] = [
        Exemplar(question: "Mia has 14 crayons. She buys 9 more. How many crayons does Mia have now?",
                 reasoning: "Mia starts with 14 crayons. 14 + 9 = 23.", answer: "23"),
        Exemplar(question: "A shelf holds 36 jars. 8 jars are taken away, and then the rest are split equally into 4 boxes. How many jars are in each box?",
                 reasoning: "After 8 are taken, 36 - 8 = 28. Split into 4 boxes, 28 / 4 = 7.", answer: "7"),
        Exemplar(question: "Omar reads 6 pages a day for 5 days, then reads 12 more pages. How many pages did he read?",
                 reasoning: "In 5 days he reads 6 * 5 = 30. Then 30 + 12 = 42.", answer: "42"),
        Exemplar(question: "A farmer has 50 eggs. He sells 17 and then doubles what is left by collecting more. How many eggs does he have?",
                 reasoning: "After selling, 50 - 17 = 33. Doubling, 33 * 2 = 66.", answer: "66"),
    ]
}
