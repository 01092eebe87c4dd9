namespace Migration.Actors.Source;

/// <summary>
/// The MigrationCoordinator's behaviour table (ReceiveActor's), for the collaborators that build a state's handlers
/// (<see cref="CommonHandlers"/>, <see cref="SourceEnding"/>). Contract: <see cref="Receive{T}"/> and
/// <see cref="ReceiveAny"/> only while a state is being built (inside the action given to <see cref="Become"/>), in the
/// order they are to match; <see cref="Become"/> for the ending states, which are not phases; <see cref="Enter"/> for
/// a phase (sets it and becomes its state together). Threading: the coordinator's thread only.
/// </summary>
internal interface ICoordinatorStates
{
    void Receive<T>(Action<T> handler);

    void ReceiveAny(Action<object> handler);

    void Become(Action state);

    void Enter(SourcePhase phase);
}
