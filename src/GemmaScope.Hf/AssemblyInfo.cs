namespace GemmaScope;
