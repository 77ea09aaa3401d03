// File names as the contract defines them (§2), and making untrusted bytes safe to show.
// Pure functions; thread-safe. Shared by the SFTP server and the delivery pipeline.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace fordeler {

// Longest <name> (contract §2: "<name>.sftpreceipt" must fit in 255 bytes).
inline constexpr size_t kMaxNameBytes = 243;
// Longest file name the file system allows (and the longest a client can reach).
inline constexpr size_t kMaxFileNameBytes = 255;
inline constexpr std::string_view kTriggerSuffix = ".trigger";

// Strict UTF-8: no overlong encodings, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF.
bool IsValidUtf8(std::string_view s);

// `s` made safe to show (in a status message, a log line's or an audit event's quoted value):
// valid UTF-8 stays; every other byte, control characters (C0, DEL, C1), bidirectional controls
// (U+202A..U+202E, U+2066..U+2069), the backslash and the double quote become "\\xNN", byte by
// byte. Always valid UTF-8, never a line break or a '"'; different names stay different.
std::string PrintableName(std::string_view s);

// `s` made safe to show on a terminal or a page: as PrintableName, but the backslash and the
// double quote stay themselves, and so do line breaks ('\n') when `keep_line_breaks`.
std::string ShowableText(std::string_view s, bool keep_line_breaks = false);

// `s` with each character (or stray byte) ShowableText would escape replaced by `replacement`.
std::string ReplaceUnshowable(std::string_view s, const char* replacement);

// `s` as the value of a key=value field in a log line: itself when it is a plain word (UTF-8,
// no space, '"', '\\', '=' or character PrintableName escapes), else PrintableName(s) in
// double quotes. For values a client chooses, such as the user name it logs in with.
std::string LogValue(std::string_view s);

// A valid <name> (contract §2): 1..243 bytes of valid UTF-8, no '/', NUL or control characters
// (C0, DEL, C1), not "." or "..", not starting with '.'. Nor, since a trigger and the metadata
// carry it as XML text, U+FFFE or U+FFFF anywhere, or white space (a space, a no-break space, ...)
// at its start or end, which XML readers trim.
bool IsValidName(std::string_view name);

// Why `name` is no valid <name>, for a description ("it holds '/' ..."); nullptr when it is one.
const char* NameProblem(std::string_view name);

// What may be created in /OUT, or renamed to there: a valid <name>, or one followed by
// ".trigger".
bool IsValidOutName(std::string_view name);

// True when `name` ends in ".trigger".
bool IsTriggerName(std::string_view name);

// What an existing file may be called for a client to reach it (stat, read, remove, list):
// 1..255 bytes, no '/' or NUL, not starting with '.' (dot-files are never shown). Names the
// delivery pipeline gives files in /IN ("<name>.<uuid>.metadata") pass; they need not be valid
// <name>s.
bool IsReachableName(std::string_view name);

}  // namespace fordeler
