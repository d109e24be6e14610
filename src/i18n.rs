//! Client-facing error messages in the caller's language (`Accept-Language`): English, Spanish
//! and Russian. Codes never change with the language; where a message carries detail (which
//! field, which country), the English original stays in `extensions.detail`.

use crate::error::ErrorCode;

/// A language of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    English,
    Spanish,
    Russian,
}

impl Language {
    /// The best supported language of an `Accept-Language` value (English when none fits).
    pub fn negotiate(accept_language: Option<&str>) -> Self {
        let Some(header) = accept_language else {
            return Self::English;
        };
        let mut best: Option<(f32, Self)> = None;
        for item in header.split(',').take(20) {
            let mut parts = item.trim().split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            let language = match primary {
                "en" => Self::English,
                "es" => Self::Spanish,
                "ru" => Self::Russian,
                _ => continue,
            };
            if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, language));
            }
        }
        best.map_or(Self::English, |(_, language)| language)
    }
}

/// The message for a code in a language other than English; `None` for English (the service's
/// own messages are English and carry their detail).
pub fn message(code: ErrorCode, language: Language) -> Option<&'static str> {
    use ErrorCode::*;
    let (es, ru) = match code {
        Unauthenticated => (
            "Falta la clave de API o no es válida.",
            "Ключ API отсутствует или недействителен.",
        ),
        ApiKeyRevoked => (
            "Esta clave de API ha sido revocada.",
            "Этот ключ API отозван.",
        ),
        TenantSuspended => (
            "Esta cuenta está suspendida.",
            "Эта учётная запись приостановлена.",
        ),
        Forbidden => (
            "No tiene permiso para esta operación.",
            "Нет доступа к этой операции.",
        ),
        BadRequest => (
            "La solicitud no es una petición GraphQL válida.",
            "Запрос не является корректным запросом GraphQL.",
        ),
        GraphqlValidationFailed => (
            "La consulta GraphQL no es válida.",
            "Запрос GraphQL недействителен.",
        ),
        InvalidInput => (
            "Un dato de la solicitud no es válido.",
            "Одно из значений запроса недопустимо.",
        ),
        InvalidPhoneNumber => (
            "El número de teléfono no es válido; use el formato internacional (+34…).",
            "Неверный номер телефона; используйте международный формат (+7…).",
        ),
        NumberTypeNotAllowed => (
            "No se puede verificar este tipo de número.",
            "Этот тип номера нельзя подтвердить.",
        ),
        CountryNotAllowed => (
            "No se admiten números de este país.",
            "Номера этой страны не поддерживаются.",
        ),
        InvalidAppSignature => (
            "La firma de la aplicación falta o no está registrada.",
            "Подпись приложения отсутствует или не зарегистрирована.",
        ),
        NoCallerIdAvailable => (
            "No hay números disponibles para llamar ahora.",
            "Сейчас нет доступных номеров для звонка.",
        ),
        PoolTooWeak => (
            "No hay suficientes números para verificar este destino con seguridad.",
            "Недостаточно номеров для безопасной проверки этого направления.",
        ),
        CallFailed => (
            "No se pudo realizar la llamada de verificación.",
            "Не удалось выполнить проверочный звонок.",
        ),
        DestinationUnreachable => (
            "No se puede llamar a este número.",
            "На этот номер невозможно позвонить.",
        ),
        DestinationNotPermitted => (
            "Las llamadas a este destino no están habilitadas.",
            "Звонки в это направление не разрешены.",
        ),
        GatewayUnavailable => (
            "El servicio de llamadas no está disponible; inténtelo de nuevo en breve.",
            "Служба звонков недоступна; повторите попытку позже.",
        ),
        SessionNotFound => (
            "No se encontró la sesión de verificación.",
            "Сеанс проверки не найден.",
        ),
        InvalidSessionToken => (
            "El token de sesión no corresponde a esta sesión.",
            "Токен сеанса не соответствует этому сеансу.",
        ),
        SessionExpired => (
            "La sesión de verificación ha caducado.",
            "Срок действия сеанса проверки истёк.",
        ),
        SessionLocked => (
            "La sesión está bloqueada tras demasiados intentos.",
            "Сеанс заблокирован после слишком многих попыток.",
        ),
        AlreadyUsed => (
            "Esta sesión de verificación ya se ha utilizado.",
            "Этот сеанс проверки уже использован.",
        ),
        RateLimited => (
            "Demasiadas solicitudes; inténtelo más tarde.",
            "Слишком много запросов; повторите попытку позже.",
        ),
        RateLimitUnavailable => (
            "No se pueden solicitar llamadas ahora; inténtelo en breve.",
            "Сейчас нельзя запросить звонок; повторите попытку позже.",
        ),
        PhoneLocked => (
            "Demasiados intentos fallidos para este número; inténtelo más tarde.",
            "Слишком много неудачных попыток для этого номера; повторите позже.",
        ),
        DestinationBlocked => (
            "Las llamadas a este destino están bloqueadas.",
            "Звонки в это направление заблокированы.",
        ),
        RequestDenied => ("La solicitud fue rechazada.", "Запрос отклонён."),
        MultipleVerifyNotAllowed => (
            "Una solicitud solo puede verificar una sesión.",
            "Один запрос может подтвердить только один сеанс.",
        ),
        TooManyAliases => (
            "La consulta usa demasiados alias.",
            "В запросе слишком много псевдонимов.",
        ),
        TooManySubscriptions => (
            "Hay demasiadas suscripciones abiertas en esta conexión.",
            "Слишком много подписок в этом соединении.",
        ),
        SubscriberTooSlow => (
            "La suscripción se quedó atrás y se cerró; suscríbase de nuevo.",
            "Подписка отстала и была закрыта; подпишитесь снова.",
        ),
        NotFound => ("No encontrado.", "Не найдено."),
        Conflict => ("Ya existe.", "Уже существует."),
        ServiceUnavailable => (
            "El servicio no está disponible temporalmente; inténtelo en breve.",
            "Служба временно недоступна; повторите попытку позже.",
        ),
        InternalError => ("Error interno.", "Внутренняя ошибка."),
    };
    match language {
        Language::English => None,
        Language::Spanish => Some(es),
        Language::Russian => Some(ru),
    }
}

/// The code behind an `extensions.code` value.
pub fn code_named(name: &str) -> Option<ErrorCode> {
    ErrorCode::ALL
        .iter()
        .copied()
        .find(|code| code.as_str() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_quality_and_falls_back_to_english() {
        assert_eq!(Language::negotiate(None), Language::English);
        assert_eq!(Language::negotiate(Some("es-ES")), Language::Spanish);
        assert_eq!(
            Language::negotiate(Some("ru-RU,ru;q=0.9,en;q=0.8")),
            Language::Russian
        );
        assert_eq!(
            Language::negotiate(Some("de, en;q=0.5, es;q=0.7")),
            Language::Spanish
        );
        assert_eq!(Language::negotiate(Some("fr, de")), Language::English);
        assert_eq!(Language::negotiate(Some("es;q=0")), Language::English);
        assert_eq!(Language::negotiate(Some(";;;,,q=x")), Language::English);
    }

    #[test]
    fn every_code_has_both_translations() {
        for code in ErrorCode::ALL {
            assert!(message(code, Language::Spanish).is_some_and(|m| !m.is_empty()));
            assert!(message(code, Language::Russian).is_some_and(|m| !m.is_empty()));
            assert_eq!(code_named(code.as_str()), Some(code));
        }
    }
}
