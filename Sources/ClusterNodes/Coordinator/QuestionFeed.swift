import Foundation
import SelfImproveCore
import Wire

/// The data set as a stream: questions are read from the file only when the coordinator has
/// room for them, so its memory does not depend on the data set's size.
struct QuestionFeed {
    private var iterator: DatasetReader<FileLines>.Iterator
    let limit: Int?
    let source: String
    let skipBadLines: Bool
    /// Questions handed out so far.
    private(set) var read = 0
    /// Malformed lines skipped so far.
    private(set) var skipped = 0
    private(set) var exhausted = false

    /// - Throws: If the file cannot be opened.
    init(_ settings: ClusterConfig.DatasetSettings) throws {
        let lines = try FileLines(path: settings.path)
        source = settings.path
        // Strict, so each bad line surfaces as its own error; skipping is decided here (the
        // iterator stands after the bad line, so the next call goes on from there).
        iterator = DatasetReader(lines: lines, format: settings.format, source: settings.path, policy: .strict).makeIterator()
        limit = settings.limit
        skipBadLines = settings.skipBadLines
    }

    /// The next question, nil at the end (or at `limit`).
    /// - Parameter onSkip: Called with each malformed line's error when skipping.
    /// - Throws: ``DatasetError`` for a malformed line when bad lines are not skipped.
    mutating func next(onSkip: (DatasetError) -> Void) throws(DatasetError) -> Question? {
        if exhausted { return nil }
        if let limit, read >= limit {
            exhausted = true
            return nil
        }
        var question: Question?
        while true {
            do {
                question = try iterator.next()
                break
            } catch {
                guard skipBadLines else { throw error }
                skipped += 1
                onSkip(error)
            }
        }
        guard let question else {
            exhausted = true
            return nil
        }
        read += 1
        return question
    }

    /// Moves past the first `questions` questions (a resumed run read them before its
    /// coordinator restarted), without reporting the malformed lines among them again.
    /// - Parameter skippedLines: Malformed lines the earlier coordinator skipped among them.
    mutating func resume(after questions: Int, skippedLines: Int) {
        while read < questions {
            do {
                guard try iterator.next() != nil else {
                    exhausted = true
                    break
                }
                read += 1
            } catch {
                continue   // counted by the earlier coordinator
            }
        }
        skipped = skippedLines
    }

    /// Where the feed stands, as the journal records it.
    var position: Selfimprove_V1_JournalFeedPosition {
        var position = Selfimprove_V1_JournalFeedPosition()
        position.questionsRead = UInt64(read)
        position.linesSkipped = UInt64(skipped)
        position.exhausted = exhausted
        return position
    }

    /// Counts the non-blank lines of the data set (an upper bound on its questions, exact for a
    /// clean file) without holding the file in memory.
    static func estimateCount(_ settings: ClusterConfig.DatasetSettings) -> Int {
        guard let lines = try? FileLines(path: settings.path) else { return 0 }
        var count = 0
        for line in lines where line.contains(where: { !$0.isWhitespace }) {
            count += 1
            if let limit = settings.limit, count >= limit { break }
        }
        return count
    }
}
