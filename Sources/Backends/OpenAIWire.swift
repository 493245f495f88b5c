import Foundation
import SelfImproveCore

/// The JSON of the OpenAI-compatible `/v1/completions` and `/v1/chat/completions` endpoints, as
/// vLLM, SGLang, TGI, Ollama and llama.cpp's server speak it: request bodies out, replies in.
/// Pure: no I/O, so every malformed reply can be tested byte for byte.
public enum OpenAIWire {
    /// Which endpoint a backend talks to.
    public enum API: String, Sendable, Hashable, CaseIterable {
        /// `/v1/completions`: the raw few-shot prompt, continued by the model.
        case completions
        /// `/v1/chat/completions`: the prompt as chat turns, for instruction-tuned models.
        case chat

        public var path: String {
            switch self {
            case .completions: "/v1/completions"
            case .chat: "/v1/chat/completions"
            }
        }
    }

    /// One chat message.
    public struct Message: Sendable, Hashable, Codable {
        public var role: String
        public var content: String
        public init(role: String, content: String) {
            self.role = role
            self.content = content
        }
    }

    /// The body of one request for `n` paths.
    public static func requestBody(api: API, model: String?, request: SamplingRequest, n: Int, seed: UInt64?,
                                   logProbabilities: Bool) -> Data
    {
        var body: [String: Any] = [
            "n": n,
            "temperature": request.temperature,
            "top_p": request.topP,
            "max_tokens": request.maxTokens,
            "stream": false,
        ]
        if let model { body["model"] = model }
        if !request.stop.isEmpty { body["stop"] = request.stop }
        if let seed { body["seed"] = seed }
        switch api {
        case .completions:
            body["prompt"] = request.prompt
            if logProbabilities { body["logprobs"] = 1 }
            if request.firstTokenAlternatives > 0 { body["logprobs"] = request.firstTokenAlternatives }
        case .chat:
            body["messages"] = chatMessages(fromFewShotPrompt: request.prompt).map { ["role": $0.role, "content": $0.content] }
            if logProbabilities { body["logprobs"] = true }
            if request.firstTokenAlternatives > 0 {
                body["logprobs"] = true
                body["top_logprobs"] = request.firstTokenAlternatives
            }
        }
        // Only strings, numbers, booleans, arrays and dictionaries go in: serialisation cannot fail.
        return (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data("{}".utf8)
    }

    /// Turns a few-shot prompt in the project's layout (``PromptBuilder``: blocks of
    /// `Q: ...\nA: ...` separated by blank lines, the last one ending in `A:`) into chat turns:
    /// each exemplar a user question and an assistant answer, then the question. A prompt in
    /// any other shape is sent as one user message.
    public static func chatMessages(fromFewShotPrompt prompt: String) -> [Message] {
        let blocks = prompt.components(separatedBy: "\n\nQ: ")
        var messages: [Message] = []
        for (position, raw) in blocks.enumerated() {
            let block = position == 0 ? raw : "Q: " + raw
            guard block.hasPrefix("Q: "), let answerRange = block.range(of: "\nA:") else {
                return [Message(role: "user", content: prompt)]
            }
            let question = block[block.index(block.startIndex, offsetBy: 3) ..< answerRange.lowerBound]
            let answer = block[answerRange.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines)
            messages.append(Message(role: "user", content: String(question)))
            if position < blocks.count - 1 {
                guard !answer.isEmpty else { return [Message(role: "user", content: prompt)] }
                messages.append(Message(role: "assistant", content: answer))
            } else if !answer.isEmpty {
                return [Message(role: "user", content: prompt)]   // the last block must be open
            }
        }
        return messages.isEmpty ? [Message(role: "user", content: prompt)] : messages
    }

    /// A reply that is not what the endpoint promises.
    public struct MalformedReply: Error, Sendable, Hashable, CustomStringConvertible {
        /// What is wrong with it.
        public var reason: String
        /// The reply's first bytes, for the log.
        public var bodyStart: String

        public var description: String { "\(reason); the reply starts with: \(bodyStart)" }
    }

    /// A parsed reply: its choices in index order, the server's model id and token counts.
    public struct Reply: Sendable, Hashable {
        public var paths: [SampledPath]
        public var model: String?
        public var promptTokens: Int?
        public var completionTokens: Int?
        /// The body was not valid UTF-8: its invalid bytes were read as U+FFFD.
        public var repairedInvalidUTF8 = false
        /// Log-probabilities that were NaN or infinite (their paths carry none).
        public var nonFiniteLogProbabilities = 0
    }

    /// Parses a reply of `api`.
    /// - Throws: ``MalformedReply`` naming what is missing or wrong, with the body's first bytes.
    public static func parseReply(_ body: Data, api: API) throws(MalformedReply) -> Reply {
        // Invalid bytes in a text are the server's fault, not the path's: read them as U+FFFD
        // rather than lose the whole reply (a byte-level token cut mid-character, say).
        let repaired = String(bytes: body, encoding: .utf8) == nil
        let text = repaired ? Data(String(decoding: body, as: UTF8.self).utf8) : body
        let decoder = JSONDecoder()
        // Python servers (vLLM, SGLang) write NaN and Infinity as bare literals, which JSON
        // lacks and JSON5 has; such values are dropped below.
        decoder.allowsJSON5 = true
        let wire: WireReply
        do {
            wire = try decoder.decode(WireReply.self, from: text)
        } catch {
            throw malformed("not the JSON of \(api.path) (\(describe(error)))", body)
        }
        guard let choices = wire.choices else { throw malformed("no \"choices\" in the reply", body) }
        guard !choices.isEmpty else { throw malformed("\"choices\" is empty", body) }
        var paths: [(index: Int, path: SampledPath, tokens: Int?)] = []
        var nonFinite = 0
        for (position, choice) in choices.enumerated() {
            let text: String?
            switch api {
            case .completions: text = choice.text ?? choice.message?.content
            case .chat: text = choice.message?.content ?? choice.text
            }
            guard let text else {
                throw malformed("choice \(position) has no \(api == .chat ? "message.content" : "text")", body)
            }
            let tokenLogProbabilities = choice.logprobs?.tokenLogprobs?.compactMap { $0 }
                ?? choice.logprobs?.content?.compactMap(\.logprob)
            // A NaN or infinite term makes the sum meaningless (and unwritable as JSON): the path
            // then has no log-probability, as from a server that sends none.
            let invalid = tokenLogProbabilities?.filter { !$0.isFinite }.count ?? 0
            nonFinite += invalid
            let logProbability = tokenLogProbabilities.flatMap { $0.isEmpty || invalid > 0 ? nil : $0.reduce(0, +) }
            var path = SampledPath(text: text, completionTokens: 0, finishReason: choice.finishReason ?? "unknown",
                                   logProbability: logProbability)
            path.firstTokenAlternatives = choice.logprobs?.firstTokenAlternatives?.filter { $0.value.isFinite }
            paths.append((choice.index ?? position, path, tokenLogProbabilities?.count))
        }
        paths.sort { $0.index < $1.index }
        var result = paths.map(\.path)
        let counted = paths.map(\.tokens)
        distributeTokens(total: wire.usage?.completionTokens, counted: counted, into: &result)
        var reply = Reply(paths: result, model: wire.model, promptTokens: wire.usage?.promptTokens,
                          completionTokens: wire.usage?.completionTokens)
        reply.repairedInvalidUTF8 = repaired
        reply.nonFiniteLogProbabilities = nonFinite
        return reply
    }

    /// Token counts per path: exact where log-probabilities counted them, otherwise the reply's
    /// total split over the paths by their length in bytes (servers report only the total).
    static func distributeTokens(total: Int?, counted: [Int?], into paths: inout [SampledPath]) {
        if counted.allSatisfy({ $0 != nil }) {
            for index in paths.indices { paths[index].completionTokens = counted[index]! }
            return
        }
        let estimate = { (text: String) in max(1, text.utf8.count / 4) }
        guard let total, total > 0 else {
            for index in paths.indices { paths[index].completionTokens = estimate(paths[index].text) }
            return
        }
        let lengths = paths.map { max(1, $0.text.utf8.count) }
        let sum = lengths.reduce(0, +)
        var given = 0
        for index in paths.indices {
            let share = index == paths.count - 1 ? total - given : total * lengths[index] / sum
            paths[index].completionTokens = max(0, share)
            given += share
        }
    }

    static func malformed(_ reason: String, _ body: Data) -> MalformedReply {
        MalformedReply(reason: reason, bodyStart: preview(body))
    }

    /// The first 200 bytes of a body as printable text, for logs.
    public static func preview(_ body: Data, limit: Int = 200) -> String {
        if body.isEmpty { return "(empty)" }
        let head = String(decoding: body.prefix(limit), as: UTF8.self)
            .map { $0.isNewline ? " " : $0 }
        return String(head) + (body.count > limit ? "… (\(body.count) bytes)" : "")
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case let DecodingError.dataCorrupted(context):
            return context.underlyingError.map { "\($0.localizedDescription)" } ?? context.debugDescription
        case let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context):
            let path = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return "\(path): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }

    // What is read of a reply; everything optional so that the checks above name what is missing.
    private struct WireReply: Decodable {
        var model: String?
        var choices: [Choice]?
        var usage: Usage?
    }

    private struct Choice: Decodable {
        var index: Int?
        var text: String?
        var message: ChoiceMessage?
        var finishReason: String?
        var logprobs: LogProbabilities?

        enum CodingKeys: String, CodingKey {
            case index, text, message, logprobs
            case finishReason = "finish_reason"
        }
    }

    private struct ChoiceMessage: Decodable {
        var content: String?
    }

    private struct LogProbabilities: Decodable {
        /// `/v1/completions` style.
        var tokenLogprobs: [Double?]?
        /// `/v1/completions` style: per position, the most likely tokens.
        var topLogprobs: [[String: Double]?]?
        /// `/v1/chat/completions` style (llama.cpp's server uses it for completions too).
        var content: [TokenLogProbability]?

        enum CodingKeys: String, CodingKey {
            case content
            case tokenLogprobs = "token_logprobs"
            case topLogprobs = "top_logprobs"
        }

        /// The first position's alternatives, in whichever style the server wrote them.
        var firstTokenAlternatives: [String: Double]? {
            if let first = content?.first?.topLogprobs, !first.isEmpty {
                var alternatives: [String: Double] = [:]
                for entry in first {
                    if let token = entry.token, let logprob = entry.logprob { alternatives[token] = max(alternatives[token] ?? -.infinity, logprob) }
                }
                return alternatives
            }
            if let first = topLogprobs?.first ?? nil, !first.isEmpty { return first }
            return nil
        }
    }

    private struct TokenLogProbability: Decodable {
        var token: String?
        var logprob: Double?
        var topLogprobs: [TopLogProbability]?

        enum CodingKeys: String, CodingKey {
            case token, logprob
            case topLogprobs = "top_logprobs"
        }
    }

    private struct TopLogProbability: Decodable {
        var token: String?
        var logprob: Double?
    }

    private struct Usage: Decodable {
        var promptTokens: Int?
        var completionTokens: Int?

        enum CodingKeys: String, CodingKey {
            case promptTokens = "prompt_tokens"
            case completionTokens = "completion_tokens"
        }
    }
}
