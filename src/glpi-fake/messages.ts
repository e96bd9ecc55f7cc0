/**
 * The texts GLPI's legacy API puts in `["ERROR_…", message]` and in create answers, in the languages the
 * fake speaks. GLPI passes them through `__()` (gettext), so they follow the session's language
 * (the GLPI default language before login).
 *
 * English msgids: `src/Api/API.php` @ 8d87c781874190b085250ce335309601092511e8, `src/Api/APIRest.php`
 * @ f3864705d882fc33359dca843bea9a4fa7d1b2a8, `src/ITILFollowup.php`, `src/ITILSolution.php` (10.0).
 * French: glpi-project/glpi `locales/fr_FR.po` @ 7e4d3bea532dd2b44f2a87a644aa0f51ceefc771 (POT of
 * 2019-01-11, the newest copy of that file in the code store), entries for `inc/api.class.php`,
 * `inc/apirest.class.php`, `inc/auth.class.php`, `inc/itilfollowup.class.php`, `inc/itilsolution.class.php`.
 * Entries marked `unverified` were not found in that file and are a best guess.
 */

export type Language = 'en_GB' | 'fr_FR';

interface Entry {
  fr: string;
  /** Not read in fr_FR.po: a guess. */
  unverified?: true;
  note?: string;
}

const FR: Readonly<Record<string, Entry>> = {
  "You don't have permission to perform this action.": { fr: "Vous n'avez pas les droits requis pour réaliser cette action." },
  'Item not found': { fr: 'Élément introuvable' },
  'session_token seems invalid': { fr: 'session_token semble incorrect' },
  'parameter session_token is missing or empty': { fr: 'le paramètre session_token est manquant ou vide' },
  'view documentation in your browser at %s': { fr: 'Afficher la documentation dans votre navigateur à %s' },
  'missing parameter app_token': { fr: 'le paramètre app_token est manquant' },
  // Sic: the French translation names user_token (a translation bug in fr_FR.po).
  'parameter app_token seems wrong': { fr: 'le paramètre user_token semble incorrect' },
  'input parameter must be an array of objects': { fr: "Le paramètre input doit être un tableau d'objets" },
  'parameter(s) login, password or user_token are missing': { fr: 'le(s) paramètre(s) login, password ou user_token sont manquants' },
  'parameter user_token seems invalid': { fr: 'le paramètre user_token semble incorrect' },
  'Incorrect username or password': { fr: 'Identifiant ou mot de passe incorrect' },
  'resource not found or not an instance of CommonDBTM': { fr: "la ressource n'a pas été trouvée ou n'est pas une instance de CommonDBTM" },
  'parent itemtype not found or not an instance of CommonDBTM': { fr: "l'itemtype parent n'a pas été trouvé ou n'est pas une instance de CommonDBTM" },
  'Malformed search criteria': { fr: 'Critère de recherche mal formé' },
  'Bad field ID in search criteria': { fr: 'Identifiant de champ incorrect dans le critère de recherche' },
  'Forbidden field ID in search criteria': { fr: 'Identifiant de champ interdit dans le critère de recherche' },
  "You can't add a followup without description": { fr: 'Vous ne pouvez pas ajouter de suivi sans une description' },
  'If you want to reopen this item, you must specify a reason': { fr: 'Si vous souhaitez rouvrir cet élément, vous devez indiquer une raison' },
  // 10.0's msgid ends "you?"; the 2019 file has the 9.x msgid "you ?" whose msgstr is this text (plus trailing spaces).
  'The item is already solved, did anyone pushed a solution before you?': {
    fr: "Cet élément a déjà été résolu, quelqu'un n'aurait-il pas écrit une solution avant vous ?",
    note: 'msgstr of the 9.x msgid "…before you ?", trailing spaces trimmed',
  },
  'Mandatory fields are not filled. Please correct: %s': { fr: 'Les champs obligatoires ne sont pas remplis. Veuillez corriger : %s', unverified: true },
  Description: { fr: 'Description' },
  'Item successfully added': { fr: 'Élément ajouté avec succès', unverified: true },
  '%1$s: %2$s': { fr: '%1$s : %2$s', unverified: true },
};

/** gettext `__()` plus PHP `sprintf` for `%s` / `%1$s` placeholders. */
export function tr(language: Language, msgid: string, ...args: (string | number)[]): string {
  const text = language === 'fr_FR' ? (FR[msgid]?.fr ?? msgid) : msgid;
  let next = 0;
  return text.replace(/%(?:(\d+)\$)?s/g, (_m, pos: string | undefined) => String(pos ? args[Number(pos) - 1] : args[next++]));
}

/** The translations the fake uses, with their provenance (for the contract fixtures and the README). */
export function frenchCatalogue(): Readonly<Record<string, Entry>> {
  return FR;
}
