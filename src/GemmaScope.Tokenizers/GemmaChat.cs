using System.Text;

namespace GemmaScope.Tokenizers;

/// <summary>One turn of a conversation for Gemma's instruction-tuned chat template.</summary>
/// <param name="Role">"user", or "model" / "assistant" (the template writes "model").</param>
/// <param name="Content">The text of the turn; surrounding whitespace is trimmed, as the template's | trim does.</param>
public readonly record struct GemmaChatMessage(string Role, string Content);

/// <summary>
/// Gemma 2's chat template (tokenizer_config.json of the -it models):
/// <c>&lt;start_of_turn&gt;user\n{content}&lt;end_of_turn&gt;\n&lt;start_of_turn&gt;model\n{content}&lt;end_of_turn&gt;\n</c>…,
/// then <c>&lt;start_of_turn&gt;model\n</c> when a generation prompt is asked for. There is no system role, and
/// roles must alternate user/model starting with user. The template's leading &lt;bos&gt; is not written
/// into the text: encoding adds it, so encoding the text gives what Hugging Face's
/// <c>apply_chat_template(messages, tokenize=True)</c> gives. Stateless; thread-safe.
/// </summary>
public static class GemmaChatTemplate
{
    /// <summary>Formats <paramref name="messages"/> as Gemma's chat template text (without the leading &lt;bos&gt;).</summary>
    /// <exception cref="ArgumentException">A system turn, an unknown role, or roles that do not alternate.</exception>
    public static string Format(IEnumerable<GemmaChatMessage> messages, bool addGenerationPrompt = true)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var sb = new StringBuilder();
        int index = 0;
        foreach (var m in messages)
        {
            string role = m.Role switch
            {
                "user" => "user",
                "model" or "assistant" => "model",
                "system" => throw new ArgumentException("Gemma's chat template has no system role (it raises 'System role not supported'); put the instructions in the first user turn.", nameof(messages)),
                _ => throw new ArgumentException($"Unknown chat role '{m.Role}' at turn {index}; use 'user' or 'model'.", nameof(messages)),
            };
            if ((role == "user") != (index % 2 == 0))
            {
                throw new ArgumentException($"Conversation roles must alternate user/model/user/model..., but turn {index} is '{m.Role}'.", nameof(messages));
            }

            sb.Append("<start_of_turn>").Append(role).Append('\n').Append((m.Content ?? "").Trim()).Append("<end_of_turn>\n");
            index++;
        }

        if (addGenerationPrompt)
        {
            sb.Append("<start_of_turn>model\n");
        }

        return sb.ToString();
    }
}
