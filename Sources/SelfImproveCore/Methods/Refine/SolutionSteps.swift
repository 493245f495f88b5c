import Foundation

/// The steps of a worked solution, as a critique copies them: one per line when the solution
/// has several lines, otherwise one per sentence (a period followed by a space or the end; a
/// period between digits, as in 2.5, does not end a step). The final "The answer is ..."
/// sentence is a step like the others.
public enum SolutionSteps {
    public static func split(_ solution: String) -> [String] {
        let lines = solution.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if lines.count > 1 { return lines }
        guard let line = lines.first else { return [] }
        var steps: [String] = []
        var current = ""
        let characters = Array(line)
        for (index, character) in characters.enumerated() {
            current.append(character)
            let next = index + 1 < characters.count ? characters[index + 1] : nil
            if character == ".", next == nil || next == " " {
                steps.append(current.trimmingCharacters(in: .whitespaces))
                current = ""
            }
        }
        let rest = current.trimmingCharacters(in: .whitespaces)
        if !rest.isEmpty { steps.append(rest) }
        return steps.filter { !$0.isEmpty }
    }
}
