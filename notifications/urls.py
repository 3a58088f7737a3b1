from django.urls import path

from notifications import views

app_name = "notifications"
urlpatterns = [
    path("messages/", views.inbox, name="inbox"),
    path("messages/read/", views.mark_all_read, name="mark_all_read"),
    path("messages/<int:pk>/", views.message_detail, name="message"),
    path("messages/<int:pk>/unread/", views.message_unread, name="unread"),
    path("messages/log/", views.send_log, name="log"),
    path("messages/log/<int:pk>/cancel/", views.message_cancel, name="cancel"),
    path("messages/log/<int:pk>/retry/", views.message_retry, name="retry"),
    path("profile/", views.profile, name="profile"),
]
