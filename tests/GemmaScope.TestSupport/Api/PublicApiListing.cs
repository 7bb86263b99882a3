using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;

namespace GemmaScope.TestSupport;

/// <summary>
/// A package's public surface as sorted, C#-like lines, one per type and member, checked in under <c>api/</c> so that every
/// change to what users can call shows up in review as a diff. Plain reflection over the built assembly: it reads
/// what the compiler emitted, not the source, so it cannot agree with the code by construction.
/// </summary>
public static class PublicApiListing
{
    /// <summary>The environment variable that makes <see cref="AssertMatches"/> rewrite the listing instead of comparing.</summary>
    public const string UpdateVariable = "GEMMASCOPE_UPDATE_API";

    /// <summary>
    /// Fails, naming the first lines that differ, when <paramref name="assembly"/>'s public surface differs from
    /// <c>api/&lt;assembly name&gt;.txt</c>; with <see cref="UpdateVariable"/>=1 it writes that file instead.
    /// </summary>
    public static void AssertMatches(Assembly assembly)
    {
        var name = assembly.GetName().Name!;
        foreach (var friend in Friends(assembly))
        {
            // Packages depend on each other through public API only: a friend assembly is a test or benchmark project.
            Assert.True(
                friend.EndsWith(".Tests", StringComparison.Ordinal) || friend.EndsWith(".Benchmarks", StringComparison.Ordinal),
                $"{name} grants InternalsVisibleTo to '{friend}', which is neither a test nor a benchmark project.");
        }

        var path = RepoRoot.File("api", name + ".txt");
        var actual = Describe(assembly);
        if (Environment.GetEnvironmentVariable(UpdateVariable) == "1")
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
            File.WriteAllText(path, actual);
            return;
        }

        Assert.True(File.Exists(path), $"{path} is missing; run the tests with {UpdateVariable}=1 to write it, then review it.");
        var expected = File.ReadAllText(path).ReplaceLineEndings("\n");
        if (expected == actual)
        {
            return;
        }

        var expectedLines = new HashSet<string>(expected.Split('\n'));
        var actualLines = new HashSet<string>(actual.Split('\n'));
        var report = new StringBuilder();
        report.Append(name).Append("'s public API differs from ").Append(path)
            .Append(". If the change is meant, rerun the tests with ").Append(UpdateVariable).Append("=1 and review the diff.\n");
        foreach (var line in expected.Split('\n').Where(l => !actualLines.Contains(l)).Take(20))
        {
            report.Append("- ").Append(line).Append('\n');
        }

        foreach (var line in actual.Split('\n').Where(l => !expectedLines.Contains(l)).Take(20))
        {
            report.Append("+ ").Append(line).Append('\n');
        }

        Assert.Fail(report.ToString());
    }

    /// <summary>The listing: the friend assemblies, then each public type's header line followed by its public and protected members, sorted.</summary>
    public static string Describe(Assembly assembly)
    {
        var text = new StringBuilder();
        foreach (var friend in Friends(assembly))
        {
            text.Append("[assembly: InternalsVisibleTo(\"").Append(friend).Append("\")]\n");
        }

        var types = assembly.GetExportedTypes()
            .Where(t => !IsCompilerGenerated(t))
            .OrderBy(t => t.FullName, StringComparer.Ordinal);
        foreach (var type in types)
        {
            text.Append(TypeHeader(type)).Append('\n');
            foreach (var (_, _, line) in Members(type).OrderBy(m => m.Rank).ThenBy(m => m.Name, StringComparer.Ordinal)
                         .ThenBy(m => m.Line, StringComparer.Ordinal))
            {
                text.Append("  ").Append(line).Append('\n');
            }
        }

        return text.ToString();
    }

    // NullabilityInfoContext caches per instance and is not thread-safe; one per thread is enough here.
    [ThreadStatic]
    private static NullabilityInfoContext? nullability;

    private static NullabilityInfoContext Nullability => nullability ??= new NullabilityInfoContext();

    private static IEnumerable<string> Friends(Assembly assembly) =>
        assembly.GetCustomAttributes<InternalsVisibleToAttribute>().Select(a => a.AssemblyName).Order(StringComparer.Ordinal);

    private const BindingFlags Declared =
        BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    // A delegate type: C# declares them all as MulticastDelegate subclasses (their members are the runtime's Invoke etc.).
    private static bool IsDelegate(Type type) => type.IsSubclassOf(typeof(MulticastDelegate));

    private static bool IsCompilerGenerated(MemberInfo member) =>
        member.Name.Contains('<', StringComparison.Ordinal) || member.IsDefined(typeof(CompilerGeneratedAttribute), false);

    private static string TypeHeader(Type type)
    {
        var header = new StringBuilder(Obsolete(type));
        if (type.IsEnum)
        {
            return header.Append("enum ").Append(type.FullName!.Replace('+', '.')).Append(" : ").Append(Name(Enum.GetUnderlyingType(type))).ToString();
        }

        if (IsDelegate(type))
        {
            var invoke = type.GetMethod("Invoke")!;
            return header.Append("delegate ").Append(Name(invoke.ReturnType)).Append(' ').Append(type.Namespace + "." + Name(type))
                .Append(Parameters(invoke)).ToString();
        }

        var isRecord = type.GetMethod("<Clone>$", Declared) is not null
            || (type.IsValueType && type.GetProperty("EqualityContract", Declared) is null
                && type.GetMethod("PrintMembers", Declared) is not null);
        if (type.IsInterface)
        {
            header.Append("interface ");
        }
        else if (type.IsValueType)
        {
            header.Append(type.IsDefined(typeof(IsReadOnlyAttribute), false) ? "readonly " : string.Empty)
                .Append(type.IsByRefLike ? "ref " : string.Empty)
                .Append(isRecord ? "record struct " : "struct ");
        }
        else
        {
            header.Append(type.IsAbstract && type.IsSealed ? "static " : type.IsAbstract ? "abstract " : type.IsSealed ? "sealed " : string.Empty)
                .Append(isRecord ? "record " : "class ");
        }

        header.Append(type.Namespace is { Length: > 0 } ns ? ns + "." : string.Empty).Append(Name(type));
        var bases = new List<string>();
        if (type.BaseType is { } baseType && baseType != typeof(object) && baseType != typeof(ValueType))
        {
            bases.Add(Name(baseType));
        }

        var inherited = type.BaseType?.GetInterfaces() ?? [];
        bases.AddRange(type.GetInterfaces()
            .Where(i => (i.IsPublic || i.IsNestedPublic) && !inherited.Contains(i))
            .Select(i => Name(i))
            .Order(StringComparer.Ordinal));
        return bases.Count == 0 ? header.ToString() : header.Append(" : ").AppendJoin(", ", bases).ToString();
    }

    /// <summary>Members in the order a reader scans a class: constructors, fields, properties, events, methods; then by name.</summary>
    private static IEnumerable<(int Rank, string Name, string Line)> Members(Type type)
    {
        if (type.IsEnum)
        {
            foreach (var field in type.GetFields(BindingFlags.Public | BindingFlags.Static))
            {
                var value = Convert.ToInt64(field.GetRawConstantValue(), System.Globalization.CultureInfo.InvariantCulture);
                yield return (0, value.ToString("D20", System.Globalization.CultureInfo.InvariantCulture), $"{field.Name} = {value}");
            }

            yield break;
        }

        if (IsDelegate(type))
        {
            yield break;
        }

        foreach (var member in type.GetMembers(Declared))
        {
            if (IsCompilerGenerated(member) && member is not ConstructorInfo)
            {
                continue;
            }

            var (rank, line) = member switch
            {
                ConstructorInfo c when Visible(c) => (0, Obsolete(c) + Access(c) + (c.IsStatic ? "static " : string.Empty) + Name(type) + Parameters(c)),
                FieldInfo f when Visible(f) => (1, Field(f)),
                PropertyInfo p => (2, Property(p)),
                EventInfo e when e.AddMethod is { } add && Visible(add) =>
                    (3, Obsolete(e) + Access(add) + Modifiers(add) + "event " + Name(e.EventHandlerType!, Nullability.Create(e)) + " " + e.Name),
                MethodInfo m when Visible(m) && (!m.IsSpecialName || m.Name.StartsWith("op_", StringComparison.Ordinal)) => (4, Method(m)),
                _ => (-1, null),
            };
            if (line is not null)
            {
                yield return (rank, member.Name, line);
            }
        }
    }

    private static bool Visible(MethodBase method) => method.IsPublic || method.IsFamily || method.IsFamilyOrAssembly;

    private static bool Visible(FieldInfo field) => field.IsPublic || field.IsFamily || field.IsFamilyOrAssembly;

    private static string Access(MethodBase method) => method.IsPublic ? string.Empty : "protected ";

    private static string Modifiers(MethodInfo method)
    {
        if (method.IsStatic)
        {
            return "static ";
        }

        if (method.DeclaringType!.IsInterface)
        {
            return method.IsAbstract ? string.Empty : "virtual ";
        }

        if (method.IsAbstract)
        {
            return "abstract ";
        }

        if (method.IsVirtual && !method.IsFinal)
        {
            return method.GetBaseDefinition().DeclaringType != method.DeclaringType ? "override " : "virtual ";
        }

        return method.IsVirtual && method.GetBaseDefinition().DeclaringType != method.DeclaringType ? "sealed override " : string.Empty;
    }

    private static string Method(MethodInfo method)
    {
        var generic = method.IsGenericMethodDefinition ? "<" + string.Join(", ", method.GetGenericArguments().Select(a => a.Name)) + ">" : string.Empty;
        var extension = method.IsDefined(typeof(ExtensionAttribute), false) ? "extension " : string.Empty;
        return Obsolete(method) + Access(method) + Modifiers(method) + extension + Name(method.ReturnType, Nullability.Create(method.ReturnParameter)) + " " + method.Name + generic
            + Parameters(method);
    }

    private static string? Property(PropertyInfo property)
    {
        var get = property.GetMethod is { } g && Visible(g) ? g : null;
        var set = property.SetMethod is { } s && Visible(s) ? s : null;
        var any = get ?? set;
        if (any is null)
        {
            return null;
        }

        var accessors = new StringBuilder(" {");
        if (get is not null)
        {
            accessors.Append(" get;");
        }

        if (set is not null)
        {
            var init = set.ReturnParameter.GetRequiredCustomModifiers().Contains(typeof(IsExternalInit));
            accessors.Append(Access(set) != Access(any) ? " protected" : string.Empty).Append(init ? " init;" : " set;");
        }

        var indexer = property.GetIndexParameters();
        var name = indexer.Length == 0 ? property.Name : "this[" + string.Join(", ", indexer.Select(Parameter)) + "]";
        var required = property.IsDefined(typeof(RequiredMemberAttribute), false) ? "required " : string.Empty;
        return Obsolete(property) + Access(any) + Modifiers(any) + required + Name(property.PropertyType, Nullability.Create(property)) + " " + name + accessors + " }";
    }

    private static string Field(FieldInfo field)
    {
        var prefix = Obsolete(field) + (field.IsPublic ? string.Empty : "protected ");
        if (field.IsLiteral)
        {
            var value = field.GetRawConstantValue();
            var shown = value is string s ? "\"" + s + "\"" : Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture);
            return prefix + "const " + Name(field.FieldType) + " " + field.Name + " = " + shown;
        }

        return prefix + (field.IsStatic ? "static " : string.Empty) + (field.IsInitOnly ? "readonly " : string.Empty)
            + Name(field.FieldType, Nullability.Create(field)) + " " + field.Name;
    }

    /// <summary>
    /// "[Obsolete] " for members the authors marked obsolete. The compiler also stamps [Obsolete] on ref structs and on
    /// constructors of types with required members (to fence off old compilers, with [CompilerFeatureRequired]); those
    /// are not deprecations and are left out.
    /// </summary>
    private static string Obsolete(MemberInfo member)
    {
        if (member.GetCustomAttribute<ObsoleteAttribute>(false) is not { } obsolete
            || member.IsDefined(typeof(CompilerFeatureRequiredAttribute), false)
            || (obsolete.Message?.StartsWith("Types with embedded references", StringComparison.Ordinal) ?? false))
        {
            return string.Empty;
        }

        return "[Obsolete] ";
    }

    private static string Parameters(MethodBase method) => "(" + string.Join(", ", method.GetParameters().Select(Parameter)) + ")";

    private static string Parameter(ParameterInfo parameter)
    {
        var type = parameter.ParameterType;
        var nullable = Nullability.Create(parameter);
        var prefix = string.Empty;
        if (type.IsByRef)
        {
            type = type.GetElementType()!;
            prefix = parameter.IsOut ? "out " : parameter.IsIn ? "in " : "ref ";
        }

        if (parameter.IsDefined(typeof(ParamArrayAttribute), false)
            || parameter.IsDefined(typeof(ParamCollectionAttribute), false))
        {
            prefix += "params ";
        }

        var text = prefix + Name(type, nullable) + " " + parameter.Name;
        if (parameter.HasDefaultValue)
        {
            text += " = " + parameter.DefaultValue switch
            {
                null when type.IsValueType && Nullable.GetUnderlyingType(type) is null => "default",
                null => "null",
                string s => "\"" + s + "\"",
                bool b => b ? "true" : "false",
                Enum e => Name(type) + "." + e,
                var v => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture),
            };
        }

        return text;
    }

    private static readonly Dictionary<Type, string> Keywords = new()
    {
        [typeof(void)] = "void",
        [typeof(bool)] = "bool",
        [typeof(byte)] = "byte",
        [typeof(sbyte)] = "sbyte",
        [typeof(short)] = "short",
        [typeof(ushort)] = "ushort",
        [typeof(int)] = "int",
        [typeof(uint)] = "uint",
        [typeof(long)] = "long",
        [typeof(ulong)] = "ulong",
        [typeof(float)] = "float",
        [typeof(double)] = "double",
        [typeof(decimal)] = "decimal",
        [typeof(char)] = "char",
        [typeof(string)] = "string",
        [typeof(object)] = "object",
        [typeof(nint)] = "nint",
        [typeof(nuint)] = "nuint",
    };

    /// <summary>
    /// A type as C# writes it: keywords, <c>T?</c> for nullable value types and (where <paramref name="info"/> says so)
    /// nullable references, generic arguments, tuples, arrays, pointers.
    /// </summary>
    private static string Name(Type type, NullabilityInfo? info = null)
    {
        var name = BareName(type, info);
        return info is not null && !type.IsValueType && !type.IsByRef && !type.IsPointer
            && (info.ReadState == NullabilityState.Nullable || info.WriteState == NullabilityState.Nullable)
            ? name + "?"
            : name;
    }

    private static string BareName(Type type, NullabilityInfo? info)
    {
        if (Keywords.TryGetValue(type, out var keyword))
        {
            return keyword;
        }

        if (type.IsByRef)
        {
            return "ref " + Name(type.GetElementType()!);
        }

        if (type.IsArray)
        {
            return Name(type.GetElementType()!, info?.ElementType) + "[" + new string(',', type.GetArrayRank() - 1) + "]";
        }

        if (type.IsPointer)
        {
            return Name(type.GetElementType()!) + "*";
        }

        if (type.IsGenericParameter)
        {
            return type.Name;
        }

        if (Nullable.GetUnderlyingType(type) is { } underlying)
        {
            return Name(underlying) + "?";
        }

        // Member signatures name types without their namespace (shorter lines; ambiguity is rare and the header lines
        // give every GemmaScope type's namespace).
        var outer = type.IsNested ? Name(type.DeclaringType!) + "." : string.Empty;
        var name = type.Name;
        var tick = name.IndexOf('`', StringComparison.Ordinal);
        if (tick < 0)
        {
            return outer + name;
        }

        if (type.IsGenericTypeDefinition)
        {
            return outer + name[..tick] + "<" + string.Join(", ", type.GetGenericArguments().Select(a => a.Name)) + ">";
        }

        var args = type.GetGenericArguments();
        var arguments = new string[args.Length];
        for (var i = 0; i < args.Length; i++)
        {
            var argInfo = info is not null && info.GenericTypeArguments.Length == args.Length ? info.GenericTypeArguments[i] : null;
            arguments[i] = Name(args[i], argInfo);
        }

        return type.FullName?.StartsWith("System.ValueTuple`", StringComparison.Ordinal) == true
            ? "(" + string.Join(", ", arguments) + ")"
            : outer + name[..tick] + "<" + string.Join(", ", arguments) + ">";
    }
}
