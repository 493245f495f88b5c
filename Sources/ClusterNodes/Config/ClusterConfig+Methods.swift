import SelfImproveCore

extension ClusterConfig.MethodSettings {
    /// The factory of the method `method.name` picks, with this run's settings.
    /// - Parameters:
    ///   - scoresPaths: Whether the run has a verifier tier to score paths.
    ///   - exemplars: The few-shot exemplars of the run's prompts.
    func factory(scoresPaths: Bool, exemplars: [Exemplar]) -> any QuestionMethodFactory {
        // `lmsi` is the only name the config accepts so far.
        SelfConsistencyMethodFactory(settings: SelfConsistencyMethod.Settings(
            m: m, prompts: PromptBuilder(exemplars: exemplars), weighted: vote == .weighted,
            minConfidence: minConfidence, minPathScore: minPathScore, scoresPaths: scoresPaths))
    }
}
